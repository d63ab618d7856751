"""Input and output serializers of the pipelines API. Validation of meaning lives in services.py."""

from rest_framework import serializers

from .destinations import destination_url_shown, mask_secret
from .models import AlertDelivery, AlertDestination, AlertPipeline


class TriggerInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=AlertPipeline.TriggerType.choices)
    features = serializers.ListField(child=serializers.CharField(), required=False)
    plans = serializers.ListField(child=serializers.CharField(), required=False)
    min_quantity = serializers.IntegerField(required=False)
    percent = serializers.JSONField(
        required=False, help_text="threshold: list of percents (default [80, 100]); usage_drop: one percent"
    )
    days = serializers.IntegerField(required=False)


class DestinationInput(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="Keep this existing destination (update only).")
    type = serializers.ChoiceField(choices=AlertDestination.Type.choices)
    url = serializers.CharField(required=False)
    to = serializers.CharField(required=False)
    secret = serializers.CharField(required=False, write_only=True)
    mentions = serializers.BooleanField(required=False)
    rate_limit_per_minute = serializers.IntegerField(required=False)


class PipelineInput(serializers.Serializer):
    """Documents the body; the view passes the raw JSON to the service, which names the field at fault."""

    name = serializers.CharField()
    enabled = serializers.BooleanField(required=False, default=True)
    trigger = TriggerInput()
    destinations = DestinationInput(many=True)


class DestinationOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    to = serializers.SerializerMethodField()
    secret = serializers.SerializerMethodField(help_text="Masked: only the last 4 characters are shown.")

    class Meta:
        model = AlertDestination
        fields = ["id", "type", "url", "to", "secret", "mentions", "rate_limit_per_minute"]

    def get_url(self, obj: AlertDestination) -> str | None:
        if not obj.url:
            return None
        return destination_url_shown(obj)

    def get_to(self, obj: AlertDestination) -> list[str] | None:
        return obj.to.split(",") if obj.to else None

    def get_secret(self, obj: AlertDestination) -> str | None:
        return mask_secret(obj.secret)


class PipelineOutput(serializers.ModelSerializer):
    trigger = serializers.SerializerMethodField()
    destinations = DestinationOutput(many=True, read_only=True)

    class Meta:
        model = AlertPipeline
        fields = ["id", "name", "enabled", "trigger", "destinations", "created_at", "updated_at"]

    def get_trigger(self, obj: AlertPipeline) -> dict:
        return {"type": obj.trigger_type, **obj.trigger_config}


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "destination_id",
            "kind",
            "status",
            "attempts",
            "last_error",
            "response_code",
            "payload",
            "summary_id",
            "created_at",
            "next_attempt_at",
            "sent_at",
        ]
