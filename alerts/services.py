"""Writes for alert pipelines: create, update and delete pipelines with their destinations, and test
messages."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Workspace
from catalog.models import KEY_MAX_LENGTH, KEY_REGEX
from core.errors import Conflict, DomainError
from core.outbound import OutboundRefused, outbound_check_url
from core.unset import UNSET
from usage.outbox import event_subscription_set

from .destinations import MASK
from .models import EVENT_TRIGGERS, AlertDelivery, AlertDestination, AlertPipeline

TriggerType = AlertPipeline.TriggerType
DestinationType = AlertDestination.Type

DEFAULT_RATE_LIMIT_PER_MINUTE = {
    DestinationType.DISCORD: 30,  # Discord webhooks allow about 30 messages a minute per channel
    DestinationType.SLACK: 60,  # Slack incoming webhooks: about one message a second
    DestinationType.WEBHOOK: 120,
    DestinationType.EMAIL: 30,
}
DEFAULT_THRESHOLDS = [80, 100]
DEFAULT_FREE_PLANS = ["free"]
MAX_DESTINATIONS = 10
MIN_WEBHOOK_SECRET = 16
MAX_TRIGGER_LIST = 100  # entries in trigger.features / trigger.plans

# Which trigger settings each trigger type reads; anything else is refused by name.
_TRIGGER_KEYS: dict[str, set[str]] = {
    TriggerType.EVENT: {"features", "plans", "min_quantity"},
    TriggerType.THRESHOLD: {"features", "plans", "percent"},
    TriggerType.PAID_FEATURE_ON_FREE_PLAN: {"features", "plans", "min_quantity"},
    TriggerType.DORMANT: {"plans", "days"},
    TriggerType.USAGE_DROP: {"features", "plans", "percent", "days"},
}


def _int(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DomainError(f"{field} must be an integer between {low} and {high}.", code="invalid_type", field=field)
    if not low <= value <= high:
        raise DomainError(f"{field} must be between {low} and {high}; got {value}.", code="out_of_range", field=field)
    return value


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


def trigger_validate(trigger: Any) -> tuple[str, dict]:
    """Check a REST-style trigger `{"type", ...settings}`; return (type, normalised config) or raise naming
    the field."""
    if not isinstance(trigger, dict):
        raise DomainError("trigger must be an object with a 'type'.", code="invalid_type", field="trigger")
    kind = trigger.get("type")
    if not isinstance(kind, str) or kind not in _TRIGGER_KEYS:
        raise DomainError(
            f"trigger.type must be one of {', '.join(_TRIGGER_KEYS)}; got {kind!r}.",
            code="invalid_choice",
            field="trigger.type",
        )
    allowed = _TRIGGER_KEYS[kind]
    for key in trigger:
        if key != "type" and key not in allowed:
            raise DomainError(
                f"trigger.{key} is not used by '{kind}' triggers (they take: {', '.join(sorted(allowed))}).",
                code="unknown_field",
                field=f"trigger.{key}",
            )
    config: dict[str, Any] = {}
    if "features" in trigger:
        config["features"] = _str_list(trigger["features"], field="trigger.features", key_format=True)
    if "plans" in trigger:
        config["plans"] = _str_list(trigger["plans"], field="trigger.plans")
    if "min_quantity" in trigger:
        config["min_quantity"] = _int(trigger["min_quantity"], field="trigger.min_quantity", low=1, high=10**9)
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
        config["percent"] = sorted({_int(p, field="trigger.percent", low=1, high=1000) for p in raw})
    if kind == TriggerType.USAGE_DROP:
        if "percent" not in trigger:
            raise DomainError(
                "trigger.percent is required for 'usage_drop': alert when usage dropped by at least this percent.",
                code="missing_field",
                field="trigger.percent",
            )
        config["percent"] = _int(trigger["percent"], field="trigger.percent", low=1, high=100)
        config["days"] = _int(trigger.get("days", 7), field="trigger.days", low=1, high=365)
    if kind == TriggerType.DORMANT:
        config["days"] = _int(trigger.get("days", 14), field="trigger.days", low=1, high=365)
    if kind == TriggerType.PAID_FEATURE_ON_FREE_PLAN and "plans" not in config:
        config["plans"] = list(DEFAULT_FREE_PLANS)
    return kind, config


def _validate_destination(spec: Any, *, index: int, existing: dict[int, AlertDestination]) -> dict:
    field = f"destinations[{index}]"
    if not isinstance(spec, dict):
        raise DomainError(f"{field} must be an object.", code="invalid_type", field=field)
    known = {"id", "type", "url", "to", "secret", "mentions", "rate_limit_per_minute"}
    for key in spec:
        if key not in known:
            raise DomainError(
                f"{field}.{key} is not a destination field ({', '.join(sorted(known))}).",
                code="unknown_field",
                field=f"{field}.{key}",
            )
    previous = None
    if spec.get("id") is not None:
        previous = existing.get(spec["id"]) if isinstance(spec["id"], int) else None
        if previous is None:
            raise DomainError(
                f"{field}.id {spec['id']!r} is not a destination of this pipeline.",
                code="not_found",
                field=f"{field}.id",
            )
    kind = spec.get("type", previous.type if previous else None)
    if kind not in DestinationType.values:
        raise DomainError(
            f"{field}.type must be one of {', '.join(DestinationType.values)}; got {kind!r}.",
            code="invalid_choice",
            field=f"{field}.type",
        )
    out: dict[str, Any] = {
        "id": previous.pk if previous else None,
        "type": kind,
        "url": "",
        "to": "",
        "secret": "",
    }

    def kept(name: str) -> str | None:
        # A value shown back masked ("••••abcd") or left out keeps what is stored.
        value = spec.get(name)
        if (
            previous is not None
            and previous.type == kind
            and (value is None or (isinstance(value, str) and MASK in value))
        ):
            return getattr(previous, name)
        return value

    if kind == DestinationType.EMAIL:
        out["to"] = _destination_to(spec, kept("to"), field=field)
    else:
        out["url"] = _destination_url(spec, kept("url"), field=field, kind=kind)
    secret = kept("secret")
    if kind == DestinationType.WEBHOOK:
        if not isinstance(secret, str) or len(secret) < MIN_WEBHOOK_SECRET or len(secret) > 200:
            raise DomainError(
                f"{field}.secret is required for webhook destinations: "
                f"{MIN_WEBHOOK_SECRET} to 200 characters, used to sign each body with HMAC-SHA256.",
                code="invalid_secret",
                field=f"{field}.secret",
            )
        out["secret"] = secret
    elif spec.get("secret"):
        raise DomainError(
            f"{field}.secret is only used by webhook destinations.",
            code="unknown_field",
            field=f"{field}.secret",
        )
    mentions = spec.get("mentions", previous.mentions if previous else False)
    if not isinstance(mentions, bool):
        raise DomainError(f"{field}.mentions must be true or false.", code="invalid_type", field=f"{field}.mentions")
    out["mentions"] = mentions
    default_limit = previous.rate_limit_per_minute if previous else DEFAULT_RATE_LIMIT_PER_MINUTE[kind]
    out["rate_limit_per_minute"] = _int(
        spec.get("rate_limit_per_minute", default_limit),
        field=f"{field}.rate_limit_per_minute",
        low=1,
        high=10_000,
    )
    return out


def _destination_to(spec: dict, to: Any, *, field: str) -> str:
    if "url" in spec and spec["url"]:
        raise DomainError(
            f"{field}.url is not used by e-mail destinations; use 'to'.",
            code="unknown_field",
            field=f"{field}.url",
        )
    addresses = to if isinstance(to, list) else (to.split(",") if isinstance(to, str) else None)
    if not addresses or not all(isinstance(a, str) and a.strip() for a in addresses):
        raise DomainError(
            f"{field}.to is required for e-mail destinations: one or more addresses.",
            code="missing_field",
            field=f"{field}.to",
        )
    for address in addresses:
        try:
            validate_email(address.strip())
        except DjangoValidationError:
            raise DomainError(
                f"{field}.to: {address.strip()!r} is not an e-mail address.",
                code="invalid_email",
                field=f"{field}.to",
            ) from None
    return ",".join(a.strip() for a in addresses)


def _destination_url(spec: dict, url: Any, *, field: str, kind: str) -> str:
    if "to" in spec and spec["to"]:
        raise DomainError(
            f"{field}.to is only used by e-mail destinations; use 'url'.",
            code="unknown_field",
            field=f"{field}.to",
        )
    if not isinstance(url, str) or not url.strip():
        raise DomainError(
            f"{field}.url is required for {kind} destinations.",
            code="missing_field",
            field=f"{field}.url",
        )
    try:
        URLValidator(schemes=["http", "https"])(url.strip())
    except DjangoValidationError:
        raise DomainError(
            f"{field}.url must be an http(s) URL; got {url!r}.", code="invalid_url", field=f"{field}.url"
        ) from None
    if len(url.strip()) > 2000:
        raise DomainError(f"{field}.url is longer than 2000 characters.", code="too_long", field=f"{field}.url")
    try:
        outbound_check_url(url.strip())
    except OutboundRefused as exc:
        raise DomainError(
            f"{field}.url is refused: {exc.reason}.", code="destination_refused", field=f"{field}.url"
        ) from None
    return url.strip()


def destinations_validate(specs: Any, *, existing: dict[int, AlertDestination] | None = None) -> list[dict]:
    if not isinstance(specs, list):
        raise DomainError("destinations must be a list.", code="invalid_type", field="destinations")
    if not specs:
        raise DomainError(
            "destinations: at least one destination is required.", code="missing_field", field="destinations"
        )
    if len(specs) > MAX_DESTINATIONS:
        raise DomainError(
            f"destinations: at most {MAX_DESTINATIONS} per pipeline.", code="too_many", field="destinations"
        )
    return [_validate_destination(spec, index=i, existing=existing or {}) for i, spec in enumerate(specs)]


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


def _destinations_replace(*, pipeline: AlertPipeline, specs: list[dict]) -> None:
    keep = {spec["id"] for spec in specs if spec["id"]}
    pipeline.destinations.exclude(pk__in=keep).delete()
    for spec in specs:
        values = {k: spec[k] for k in ("type", "url", "to", "secret", "mentions", "rate_limit_per_minute")}
        if spec["id"]:
            AlertDestination.objects.filter(pk=spec["id"], pipeline=pipeline).update(**values)
        else:
            AlertDestination.objects.create(workspace_id=pipeline.workspace_id, pipeline=pipeline, **values)


def _save_unique(pipeline: AlertPipeline) -> None:
    try:
        with transaction.atomic():
            pipeline.save()
    except IntegrityError as exc:
        if "usage_alertpipeline_unique_name" in str(exc):
            raise Conflict(
                f"A pipeline named {pipeline.name!r} already exists in this workspace.",
                code="duplicate_name",
                field="name",
            ) from None
        raise


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
    *, workspace: Workspace, name: str, trigger: dict, destinations: list[dict], enabled: bool = True
) -> AlertPipeline:
    """Create a pipeline with its destinations."""
    kind, config = trigger_validate(trigger)
    specs = destinations_validate(destinations)
    pipeline = AlertPipeline(
        workspace=workspace,
        name=_name(name),
        enabled=_enabled(enabled),
        trigger_type=kind,
        trigger_config=config,
    )
    _save_unique(pipeline)
    _destinations_replace(pipeline=pipeline, specs=specs)
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
) -> AlertPipeline:
    """Change what is given; `destinations` replaces the list (an entry with an `id` keeps that destination,
    and a masked or omitted url/secret keeps the stored one)."""
    pipeline = AlertPipeline.objects.select_for_update().get(pk=pipeline.pk)
    if name is not UNSET:
        pipeline.name = _name(name)
    if enabled is not UNSET:
        pipeline.enabled = _enabled(enabled)
    if trigger is not UNSET:
        pipeline.trigger_type, pipeline.trigger_config = trigger_validate(trigger)
    specs = None
    if destinations is not UNSET:
        specs = destinations_validate(destinations, existing={d.pk: d for d in pipeline.destinations.all()})
    _save_unique(pipeline)
    if specs is not None:
        _destinations_replace(pipeline=pipeline, specs=specs)
    alerts_subscription_sync(workspace_id=pipeline.workspace_id)
    return pipeline


@transaction.atomic
def pipeline_delete(*, pipeline: AlertPipeline) -> None:
    """Delete a pipeline, its destinations and their delivery log."""
    pipeline.delete()
    alerts_subscription_sync(workspace_id=pipeline.workspace_id)


def pipeline_test_send(*, pipeline: AlertPipeline, now: Any = None) -> list[AlertDelivery]:
    """Queue a test message to every destination of the pipeline (sent after commit, like any alert)."""
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
