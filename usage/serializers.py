"""Input and output serializers of the usage API (the events body is parsed by usage.validation, these
describe it for the OpenAPI schema)."""

from django.conf import settings
from rest_framework import serializers

from accounts.models import EXTERNAL_ID_MAX_LENGTH, Account, EndUser
from catalog.models import KEY_MAX_LENGTH
from entitlements.models import EVENT_ID_MAX_LENGTH, MAX_QUANTITY


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare, naming them."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {name: [f"Unknown field '{name}'; allowed: {', '.join(sorted(self.fields))}."] for name in unknown}
            )
        return super().to_internal_value(data)


# --- events (documentation of the body that usage.validation parses) ------------------------------------


class EventSerializer(serializers.Serializer):
    account_id = serializers.CharField(
        help_text="Required. Free text (printable: no control characters). Trimmed; over "
        f"{EXTERNAL_ID_MAX_LENGTH} characters truncated (warning)."
    )
    feature_id = serializers.CharField(
        help_text=f"Required. A key of at most {KEY_MAX_LENGTH} characters: letters, digits, `_ . : -`. Unknown "
        "features are registered as draft."
    )
    user_id = serializers.CharField(required=False, help_text="End user, scoped to the account.")
    product_id = serializers.CharField(
        required=False,
        help_text="Optional. A new feature is registered under it (default `default`); an existing feature "
        "must live in it, else `hierarchy_conflict`.",
    )
    module_id = serializers.CharField(
        required=False, help_text="Optional. When given, the feature must live in this module."
    )
    timestamp = serializers.DateTimeField(required=False, help_text="ISO 8601; no offset means UTC; absent means now.")
    quantity = serializers.IntegerField(
        required=False,
        default=1,
        min_value=-MAX_QUANTITY,
        max_value=MAX_QUANTITY,
        help_text=f"Integer, |q| ≤ {MAX_QUANTITY}, default 1. 0 is ignored; negative reverts.",
    )
    event_id = serializers.CharField(
        required=False, max_length=EVENT_ID_MAX_LENGTH, help_text="Idempotency key, unique per workspace forever."
    )
    properties = serializers.DictField(
        required=False,
        help_text=f"JSON object, ≤ {settings.UPTAKE_INGEST_MAX_PROPERTIES_BYTES} bytes serialized "
        "(UPTAKE_INGEST_MAX_PROPERTIES_BYTES).",
    )


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(
        many=True, help_text=f"1 to UPTAKE_INGEST_MAX_EVENTS ({settings.UPTAKE_INGEST_MAX_EVENTS}) events."
    )


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class WarningSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    code = serializers.CharField(help_text="`truncated` or `unknown_field`.")
    field = serializers.CharField()
    message = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored (committed) by this request.")
    duplicates = serializers.IntegerField(help_text="Events whose event_id was already seen; not stored.")
    ignored = serializers.IntegerField(help_text="Events with quantity 0; accepted, stored nowhere.")
    rejected = RejectionSerializer(many=True)
    warnings = WarningSerializer(many=True)


# --- accounts and end users ------------------------------------------------------------------------------


class AccountInputSerializer(StrictSerializer):
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    domain = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    plan = serializers.CharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
    customer_email = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, help_text="The customer's billing contact (an e-mail)."
    )
    owner_email = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    status = serializers.CharField(required=False)
    attributes = serializers.JSONField(required=False, allow_null=True)


class AccountOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    owner_email = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "domain",
            "plan",
            "customer_email",
            "owner_email",
            "status",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]

    def get_owner_email(self, account: Account) -> str | None:
        return account.owner.email if account.owner_id else None


class EndUserInputSerializer(StrictSerializer):
    email = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    attributes = serializers.JSONField(required=False, allow_null=True)


class EndUserOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id")
    account_id = serializers.CharField(source="account.external_id")

    class Meta:
        model = EndUser
        fields = [
            "id",
            "account_id",
            "email",
            "attributes",
            "first_seen_at",
            "last_seen_at",
            "created_at",
            "updated_at",
        ]
