"""Writes for alert pipelines: create, update and delete pipelines with their channels, and test messages.
Channels themselves are written by alerts.channels."""

from __future__ import annotations

import re
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Workspace
from catalog.models import KEY_MAX_LENGTH, KEY_REGEX
from core.errors import DomainError
from core.unset import UNSET
from usage.outbox import event_subscription_set

from .channels import int_between, name_taken, pipeline_channels_resolve, pipeline_channels_save, save_or_conflict
from .filters import filter_validate, unknown_feature_keys
from .message_templates import template_validate
from .models import EVENT_TRIGGERS, AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel

TriggerType = AlertPipeline.TriggerType
DEFAULT_THRESHOLDS = [80, 100]
DEFAULT_FREE_PLANS = ["free"]
MAX_DESTINATIONS = 10
MAX_TRIGGER_LIST = 100  # entries in trigger.features / trigger.plans

# Which trigger settings each trigger type reads; anything else is refused by name.
_TRIGGER_KEYS: dict[str, set[str]] = {
    TriggerType.EVENT: {"features", "plans", "min_quantity", "expected_later"},
    TriggerType.THRESHOLD: {"features", "plans", "percent", "expected_later"},
    TriggerType.PAID_FEATURE_ON_FREE_PLAN: {"features", "plans", "min_quantity", "expected_later"},
    TriggerType.DORMANT: {"plans", "days"},
    TriggerType.USAGE_DROP: {"features", "plans", "percent", "days", "expected_later"},
}


def _str_list(value: Any, *, field: str, key_format: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DomainError(f"{field} must be a list of strings.", code="invalid_type", field=field)
    if len(value) > MAX_TRIGGER_LIST:
        raise DomainError(
            f"{field} has {len(value)} entries; at most {MAX_TRIGGER_LIST}.", code="too_many", field=field
        )
    out: dict[str, None] = {}  # ordered and deduplicated in one pass
    for index, raw in enumerate(value):
        item = raw.strip()
        if not item:
            raise DomainError(f"{field}[{index}] must not be empty.", code="empty", field=f"{field}[{index}]")
        if key_format and (len(item) > KEY_MAX_LENGTH or not re.match(KEY_REGEX, item)):
            raise DomainError(
                f"{field}[{index}] {item!r} is not a feature key (letters, digits, '_.:-', ≤ {KEY_MAX_LENGTH}).",
                code="invalid_key",
                field=f"{field}[{index}]",
            )
        out[item] = None
    return list(out)


def _expected_later(trigger: dict, config: dict) -> None:
    if trigger.get("expected_later") not in (None, False, True):
        raise DomainError(
            "trigger.expected_later must be true or false.", code="invalid_type", field="trigger.expected_later"
        )
    if trigger.get("expected_later") and config.get("features"):
        config["expected_later"] = True


def trigger_validate(trigger: Any) -> tuple[str, dict]:
    """Check a REST-style trigger `{"type", ...settings}`; return (type, normalised config) or raise naming
    the field."""
    if not isinstance(trigger, dict):
        raise DomainError("trigger must be an object with a 'type'.", code="invalid_type", field="trigger")
    kind = trigger.get("type")
    if kind is None:
        raise DomainError(
            f"trigger.type is required: one of {', '.join(_TRIGGER_KEYS)}.", code="missing_field", field="trigger.type"
        )
    if not isinstance(kind, str) or kind not in _TRIGGER_KEYS:
        raise DomainError(
            f"trigger.type must be one of {', '.join(_TRIGGER_KEYS)}; got {kind!r}.",
            code="invalid_choice",
            field="trigger.type",
        )
    allowed = _TRIGGER_KEYS[kind]
    for key in trigger:
        if key != "type" and key not in allowed:
            takes = ", ".join(sorted(allowed - {"expected_later"}))
            raise DomainError(
                f"trigger.{key} is not used by '{kind}' triggers (they take: {takes}).",
                code="unknown_field",
                field=f"trigger.{key}",
            )
    config: dict[str, Any] = {}
    if "features" in trigger:
        config["features"] = _str_list(trigger["features"], field="trigger.features", key_format=True)
    _expected_later(trigger, config)
    if "plans" in trigger:
        config["plans"] = _str_list(trigger["plans"], field="trigger.plans")
    if "min_quantity" in trigger:
        config["min_quantity"] = int_between(trigger["min_quantity"], field="trigger.min_quantity", low=1, high=10**9)
    if kind == TriggerType.THRESHOLD:
        raw = trigger.get("percent", DEFAULT_THRESHOLDS)
        raw = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if not isinstance(raw, list) or not raw:
            raise DomainError(
                "trigger.percent must be a threshold or a list of thresholds (percent of the allowance), "
                "e.g. [80, 100].",
                code="invalid_type",
                field="trigger.percent",
            )
        config["percent"] = sorted({int_between(p, field="trigger.percent", low=1, high=1000) for p in raw})
    if kind == TriggerType.USAGE_DROP:
        if "percent" not in trigger:
            raise DomainError(
                "trigger.percent is required for 'usage_drop': alert when usage dropped by at least this percent.",
                code="missing_field",
                field="trigger.percent",
            )
        config["percent"] = int_between(trigger["percent"], field="trigger.percent", low=1, high=100)
        config["days"] = int_between(trigger.get("days", 7), field="trigger.days", low=1, high=365)
    if kind == TriggerType.DORMANT:
        config["days"] = int_between(trigger.get("days", 14), field="trigger.days", low=1, high=365)
    if kind == TriggerType.PAID_FEATURE_ON_FREE_PLAN and "plans" not in config:
        config["plans"] = list(DEFAULT_FREE_PLANS)
    return kind, config


def _trigger_features_known(*, workspace_id: int, config: dict) -> None:
    """A mistyped key would make the pipeline never fire: keys must name catalog features unless the trigger says
    they are expected later (a feature no event has used yet)."""
    if config.get("expected_later") or not config.get("features"):
        return
    missing = unknown_feature_keys(workspace_id=workspace_id, keys=config["features"])
    if missing:
        raise DomainError(
            f"trigger.features: no feature {', '.join(repr(k) for k in missing)} in the catalog. Check the spelling, "
            'or set "expected_later": true to keep keys no event has used yet.',
            code="unknown_feature",
            field="trigger.features",
        )


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DomainError("name is required: a non-empty string.", code="missing_field", field="name")
    if len(value.strip()) > 200:
        raise DomainError("name is longer than 200 characters.", code="too_long", field="name")
    return value.strip()


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise DomainError("enabled must be true or false.", code="invalid_type", field="enabled")
    return value


def _channels_replace(*, pipeline: AlertPipeline, resolved: list) -> None:
    channels = pipeline_channels_save(workspace_id=pipeline.workspace_id, resolved=resolved)
    AlertPipelineChannel.objects.filter(pipeline=pipeline).delete()
    AlertPipelineChannel.objects.bulk_create(
        [AlertPipelineChannel(pipeline=pipeline, channel=c, position=i) for i, c in enumerate(channels)]
    )


def _current_channels(pipeline: AlertPipeline) -> dict[int, AlertChannel]:
    return {
        link.channel.pk: link.channel
        for link in AlertPipelineChannel.objects.filter(pipeline=pipeline).select_related("channel")
    }


def _save_unique(pipeline: AlertPipeline) -> None:
    save_or_conflict(pipeline, {"usage_alertpipeline_unique_name": lambda: name_taken("pipeline", pipeline.name)})


# pg_advisory_xact_lock(class, workspace id): serialises the subscription sync of one workspace's pipelines.
_SUBSCRIPTION_LOCK_CLASS = 0x616C7274  # "alrt"


@transaction.atomic
def alerts_subscription_sync(*, workspace_id: int) -> bool:
    """Tell ingestion whether the workspace has an enabled event-driven pipeline (usage's EventSubscription);
    called by every write of a pipeline. Returns whether it has one."""
    with connection.cursor() as cursor:
        # Under the lock, a concurrent change of another pipeline of the workspace has committed before this
        # reads, so the last sync to commit saw every pipeline as committed.
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_SUBSCRIPTION_LOCK_CLASS, workspace_id])
    subscribed = AlertPipeline.objects.filter(
        workspace_id=workspace_id, enabled=True, trigger_type__in=EVENT_TRIGGERS
    ).exists()
    event_subscription_set(workspace_id=workspace_id, subscribed=subscribed, now=timezone.now())
    return subscribed


@transaction.atomic
def pipeline_create(
    *,
    workspace: Workspace,
    name: str,
    trigger: dict,
    destinations: list[dict] | None = None,
    channels: list[int] | None = None,
    enabled: bool = True,
    filter: Any = None,
    template: Any = None,
) -> AlertPipeline:
    """Create a pipeline posting to `channels` (ids) and to the channels `destinations` describe inline."""
    kind, config = trigger_validate(trigger)
    _trigger_features_known(workspace_id=workspace.pk, config=config)
    filter_spec = filter_validate(filter, workspace_id=workspace.pk, trigger_type=kind)
    template_spec = template_validate(template)
    resolved = pipeline_channels_resolve(
        workspace_id=workspace.pk,
        channel_ids=channels,
        destinations=destinations,
        current={},
        max_channels=MAX_DESTINATIONS,
    )
    pipeline = AlertPipeline(
        workspace=workspace,
        name=_name(name),
        enabled=_enabled(enabled),
        trigger_type=kind,
        trigger_config=config,
        filter=filter_spec,
        template=template_spec,
    )
    _save_unique(pipeline)
    _channels_replace(pipeline=pipeline, resolved=resolved)
    alerts_subscription_sync(workspace_id=pipeline.workspace_id)
    return pipeline


@transaction.atomic
def pipeline_update(
    *,
    pipeline: AlertPipeline,
    name: Any = UNSET,
    enabled: Any = UNSET,
    trigger: Any = UNSET,
    destinations: Any = UNSET,
    channels: Any = UNSET,
    filter: Any = UNSET,
    template: Any = UNSET,
) -> AlertPipeline:
    """Change what is given; `channels` and `destinations` together replace the pipeline's channels (an inline
    entry with an `id` updates that channel, and a masked or omitted url/secret/token keeps the stored one)."""
    pipeline = AlertPipeline.objects.select_for_update().get(pk=pipeline.pk)
    if name is not UNSET:
        pipeline.name = _name(name)
    if enabled is not UNSET:
        pipeline.enabled = _enabled(enabled)
    if trigger is not UNSET:
        pipeline.trigger_type, pipeline.trigger_config = trigger_validate(trigger)
        _trigger_features_known(workspace_id=pipeline.workspace_id, config=pipeline.trigger_config)
    if filter is not UNSET or trigger is not UNSET:
        # A new trigger type may know less than the old one: the filter is checked against it too.
        raw_filter = pipeline.filter if filter is UNSET else filter
        pipeline.filter = filter_validate(
            raw_filter, workspace_id=pipeline.workspace_id, trigger_type=pipeline.trigger_type
        )
    if template is not UNSET:
        pipeline.template = template_validate(template)
    resolved = None
    if destinations is not UNSET or channels is not UNSET:
        resolved = pipeline_channels_resolve(
            workspace_id=pipeline.workspace_id,
            channel_ids=None if channels is UNSET else channels,
            destinations=None if destinations is UNSET else destinations,
            current=_current_channels(pipeline),
            max_channels=MAX_DESTINATIONS,
        )
    _save_unique(pipeline)
    if resolved is not None:
        _channels_replace(pipeline=pipeline, resolved=resolved)
    alerts_subscription_sync(workspace_id=pipeline.workspace_id)
    return pipeline


@transaction.atomic
def pipeline_delete(*, pipeline: AlertPipeline) -> None:
    """Delete a pipeline and its delivery log; its channels stay in the workspace."""
    pipeline.delete()
    alerts_subscription_sync(workspace_id=pipeline.workspace_id)


def pipeline_test_send(*, pipeline: AlertPipeline, now: Any = None) -> list[AlertDelivery]:
    """Queue a test message to every channel of the pipeline (sent after commit, like any alert)."""
    from .delivery import deliveries_create

    now = now or timezone.now()
    payload = {
        "event": "test",
        "title": f"Test message from '{pipeline.name}'",
        "text": "If you can read this, Uptake can deliver alerts here.",
        "pipeline": {"id": pipeline.pk, "name": pipeline.name},
        "account": None,
        "feature": None,
        "details": {"trigger": pipeline.trigger_type},
        "occurred_at": now.isoformat(),
    }
    return deliveries_create(pipeline=pipeline, payload=payload, dedupe_key="", kind=AlertDelivery.Kind.TEST, now=now)
