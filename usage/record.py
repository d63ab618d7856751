"""`POST /api/v1/usage/record`: record usage with enforcement (service and view). Unknown accounts or features,
and quantities the check would refuse (entitlements.selectors.usage_refusal) are refused (`recorded: false` with
a reason); recording goes through `usage_events_store`. Locks and idempotency: docs/internals.md ("Usage
record")."""

import re
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasIngestScope
from accounts.models import EXTERNAL_ID_MAX_LENGTH, Account, Workspace
from accounts.selectors import account_external_id_for_user
from catalog.models import KEY_MAX_LENGTH, Feature
from core.errors import DomainError
from core.serializers import error_response
from entitlements.api import EntitlementCheckSerializer
from entitlements.models import EVENT_ID_MAX_LENGTH, MAX_QUANTITY, RecordOutcome
from entitlements.periods import Period
from entitlements.selectors import Effective, effective_entitlement, entitlement_payload, refusal_payload

from .allowances import allowance_counters_current, allowance_used_from_events
from .models import UsageEvent
from .services import usage_events_store
from .validation import Rejection, event_validator

RECORD_FIELDS = ("event_id", "account_id", "user_id", "feature_id", "quantity", "timestamp", "properties")


def _lock(key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _refusal(*, reason: str, entitlement: dict) -> dict:
    return {"recorded": False, "reason": reason, "entitlement": entitlement}


# Kana's recordUsage names the fields {userId, featureId, delta} (delta may be a numeric string: "1").
KANA_ALIASES = {"userId": "user_id", "featureId": "feature_id", "delta": "quantity"}
_INTEGER_TEXT = re.compile(r"^\s*[-+]?[0-9]+\s*$", re.ASCII)  # "５" and "١" are not numbers here


def _kana_aliases(payload: dict) -> dict:
    """The payload with Kana's names turned into ours; an alias next to the field it stands for is a conflict."""
    out = dict(payload)
    for alias, name in KANA_ALIASES.items():
        if alias not in out:
            continue
        if name in out:
            raise DomainError(
                f"'{alias}' and '{name}' are the same field; send one of them.", code="conflicting_fields", field=alias
            )
        value = out.pop(alias)
        if alias == "delta" and isinstance(value, str) and _INTEGER_TEXT.match(value):
            value = int(value)
        out[name] = value
    return out


def usage_record(*, workspace: Workspace, payload: dict, now: datetime) -> dict:
    """Record one usage event if the account may use that much: {"recorded", "reason"?, "entitlement"}."""
    if not isinstance(payload, dict):
        raise DomainError("The body must be a JSON object.", code="invalid_body")
    payload = _kana_aliases(payload)
    if payload.get("account_id") is None and isinstance(payload.get("user_id"), str):
        # Kana records usage per user: the account is the one the end user belongs to.
        account = account_external_id_for_user(workspace=workspace, user_external_id=payload["user_id"].strip())
        if account is None:
            raise DomainError(
                f"No end user '{payload['user_id'].strip()[:64]}' in this workspace: send 'account_id', or create "
                "the user first (PUT /api/v1/accounts/{account_id}/users/{user_id}).",
                code="unknown_user",
                field="user_id",
            )
        payload["account_id"] = account
    unknown = sorted(set(payload) - set(RECORD_FIELDS))
    if unknown:
        raise DomainError(
            f"Unknown field '{unknown[0]}': usage/record takes {', '.join(RECORD_FIELDS)}.",
            code="unknown_field",
            field=str(unknown[0])[:100],
        )
    checked = event_validator(workspace=workspace, now=now)(payload, index=0)
    if isinstance(checked, Rejection):
        raise DomainError(checked.message, code=checked.code, field=checked.field)
    if checked.quantity == 0:
        raise DomainError(
            "'quantity' must not be 0: there is nothing to record.", code="invalid_value", field="quantity"
        )
    with transaction.atomic():
        if checked.event_id is not None:
            _lock(f"uptake:record-event:{workspace.pk}:{checked.event_id}")
            stored = RecordOutcome.objects.filter(workspace=workspace, event_id=checked.event_id).first()
            if stored is not None:
                return stored.response
        answer = _record(workspace=workspace, event=checked, now=now)
        if checked.event_id is not None:
            RecordOutcome.objects.create(
                workspace=workspace,
                event_id=checked.event_id,
                recorded=answer["recorded"],
                reason=answer.get("reason", ""),
                response=answer,
            )
        return answer


def _record(*, workspace: Workspace, event, now: datetime) -> dict:
    account_id = (
        Account.objects.filter(workspace=workspace, external_id=event.account_key).values_list("pk", flat=True).first()
    )
    feature = Feature.objects.filter(workspace=workspace, key=event.feature_key).first()
    if account_id is None:
        return _refusal(
            reason="unknown_account",
            entitlement=refusal_payload(feature_key=event.feature_key, reason="unknown_account", feature=feature),
        )
    if feature is None:
        return _refusal(
            reason="unknown_feature",
            entitlement=refusal_payload(feature_key=event.feature_key, reason="unknown_feature"),
        )
    # While a switch to metered is being rebuilt, the counters lag: `used` is summed from the raw events.
    used_in = None
    if feature.metered and not allowance_counters_current(feature=feature):

        def used_in(period: Period) -> int:
            return allowance_used_from_events(feature=feature, account_id=account_id, period=period)

    def payload(effective: Effective) -> dict:
        return entitlement_payload(feature=feature, effective=effective, account_id=account_id, now=now, used=used_in)

    if event.event_id is not None and UsageEvent.objects.filter(workspace=workspace, event_id=event.event_id).exists():
        # Stored earlier through /api/v1/events: that event stands, nothing new is recorded.
        effective = effective_entitlement(account_id=account_id, feature=feature, now=now)
        return {"recorded": True, "entitlement": payload(effective)}
    if feature.metered:
        _lock(f"uptake:allowance:{account_id}:{feature.pk}")
    effective = effective_entitlement(account_id=account_id, feature=feature, now=now)
    if event.quantity > 0:
        # The check's own answer for this quantity, in the period of the event's timestamp, decides.
        verdict = entitlement_payload(
            feature=feature,
            effective=effective,
            account_id=account_id,
            now=now,
            quantity=event.quantity,
            at=event.occurred_at,
            used=used_in,
        )
        if not verdict["entitled"]:
            return _refusal(reason=verdict["reason"], entitlement=verdict)
    result = usage_events_store(
        workspace=workspace, events=[event], now=now, source=UsageEvent.Source.RECORD, register=False
    )
    if result.rejected:
        rejection = result.rejected[0]
        raise DomainError(rejection.message, code=rejection.code, field=rejection.field)
    return {"recorded": True, "entitlement": payload(effective)}


class UsageRecordInput(serializers.Serializer):
    event_id = serializers.CharField(required=False, max_length=EVENT_ID_MAX_LENGTH)
    account_id = serializers.CharField(
        max_length=EXTERNAL_ID_MAX_LENGTH, required=False, help_text="Left out: the account of the end user `user_id`."
    )
    user_id = serializers.CharField(
        required=False, max_length=EXTERNAL_ID_MAX_LENGTH, help_text="`userId` (Kana) is accepted."
    )
    feature_id = serializers.CharField(max_length=KEY_MAX_LENGTH, help_text="`featureId` (Kana) is accepted.")
    quantity = serializers.IntegerField(
        default=1,
        min_value=-MAX_QUANTITY,
        max_value=MAX_QUANTITY,
        help_text="Non-zero; negative quantities are always recorded. `delta` (Kana; a number or a numeric "
        "string) is accepted instead; both → 400 `conflicting_fields`.",
    )
    timestamp = serializers.DateTimeField(required=False, help_text="ISO 8601; no offset means UTC; default now.")
    properties = serializers.JSONField(required=False)


class UsageRecordView(APIView):
    permission_classes = [HasIngestScope]

    @extend_schema(
        operation_id="usage_record",
        request=UsageRecordInput,
        responses={
            200: inline_serializer(
                "UsageRecordResult",
                {
                    "recorded": serializers.BooleanField(),
                    "reason": serializers.ChoiceField(
                        choices=["limit_exceeded", "not_entitled", "unknown_account", "unknown_feature"],
                        required=False,
                    ),
                    "entitlement": EntitlementCheckSerializer(),
                },
            ),
            400: error_response(
                "A field the ingestion rules refuse (its code), `conflicting_fields` (an alias next to "
                "its field), `unknown_user` (no account_id and no end user with that id), `unknown_field`."
            ),
        },
        description="Record usage with enforcement: recorded when `GET /api/v1/entitlements/check` would "
        "answer `entitled: true` for this quantity (metered: in the period of the event's timestamp). Refusals "
        "answer 200 with `recorded: false`, the check's reason, and its answer as `entitlement`; "
        "replaying an `event_id` returns the original answer and records nothing new. Kana's "
        "`{userId, featureId, delta}` is accepted as is: without `account_id` the account is the end user's "
        "(400 `unknown_user` when no end user has that id).",
    )
    def post(self, request):
        answer = usage_record(workspace=request.user.workspace, payload=request.data, now=timezone.now())
        return Response(answer)
