"""Triggers: decide which stored events (and which account usage numbers) raise alerts, enrich them, and
create their deliveries. Evaluation runs in Celery after the ingestion transaction commits, never on the
request path."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import transaction

from accounts.models import Account, Workspace
from analytics.selectors import allowance_reached
from catalog.models import Feature
from usage.models import EventOutbox, UsageEvent

from .delivery import deliveries_create
from .filters import FilterSubject, filter_matches
from .message_templates import template_render, template_values
from .models import EVENT_TRIGGERS, AlertDelivery, AlertPipeline, AlertThresholdMark, AlertWindowMark
from .selectors import latest_events, pipelines_enabled

logger = logging.getLogger(__name__)

TriggerType = AlertPipeline.TriggerType
NO_PERIOD_START = datetime(1970, 1, 1, tzinfo=UTC)


def alert_pending_evaluate(*, pending_id: int, now: datetime) -> list[AlertDelivery]:
    """Evaluate one outbox row and delete it; a row already evaluated (gone) does nothing."""
    pending = EventOutbox.objects.filter(pk=pending_id).first()
    if pending is None:
        return []
    created = alert_events_evaluate(workspace_id=pending.workspace_id, event_ids=pending.event_ids, now=now)
    EventOutbox.objects.filter(pk=pending_id).delete()
    return created


def alerts_pending_sweep(*, now: datetime, grace: timedelta, limit: int = 500) -> int:
    """Evaluate outbox rows older than `grace` (their task was lost, or is late): the oldest `limit` of them.
    Returns how many were evaluated."""
    ids = list(
        EventOutbox.objects.filter(created_at__lt=now - grace).order_by("pk").values_list("pk", flat=True)[:limit]
    )
    for pending_id in ids:
        try:
            alert_pending_evaluate(pending_id=pending_id, now=now)
        except Exception:  # noqa: BLE001 - one bad row must not stop the others; it is retried next sweep
            logger.exception("alert evaluation of outbox row %s failed; retried at the next sweep", pending_id)
    return len(ids)


def alert_account_context(account: Account) -> dict:
    """Enrichment carried by every alert: the account's id, name, plan, owner (e-mail) and domain."""
    owner = account.owner
    return {
        "id": account.external_id,
        "name": account.name or account.external_id,
        "plan": account.plan or None,
        "owner": (owner.email or owner.get_username()) if owner is not None else None,
        "domain": account.domain or None,
    }


def _feature_context(feature: Feature) -> dict:
    return {"id": feature.key, "name": feature.name}


def _trigger_sets(pipeline: AlertPipeline) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """The pipeline's plans (lower-cased) and features as sets, built once per loaded pipeline, so matching
    many events costs one lookup each."""
    sets = getattr(pipeline, "_trigger_sets", None)
    if sets is None:
        plans, features = pipeline.trigger_config.get("plans"), pipeline.trigger_config.get("features")
        sets = (frozenset(p.lower() for p in plans) if plans else None, frozenset(features) if features else None)
        pipeline._trigger_sets = sets
    return sets


def _plan_ok(pipeline: AlertPipeline, account: Account) -> bool:
    plans = _trigger_sets(pipeline)[0]
    plan_ok = plans is None or (account.plan or "").strip().lower() in plans
    return plan_ok and filter_matches(pipeline.filter, FilterSubject(account=account))


def _event_ok(pipeline: AlertPipeline, event: UsageEvent) -> bool:
    """The trigger's features and plans, then the pipeline's filter, on what the event query already loaded."""
    if not _feature_ok(pipeline, event.feature):
        return False
    plans = _trigger_sets(pipeline)[0]
    if plans is not None and (event.account.plan or "").strip().lower() not in plans:
        return False
    subject = FilterSubject(
        account=event.account,
        feature=event.feature,
        end_user=event.end_user,
        quantity=event.quantity,
        properties=event.properties,
    )
    return filter_matches(pipeline.filter, subject)


def _feature_ok(pipeline: AlertPipeline, feature: Feature) -> bool:
    features = _trigger_sets(pipeline)[1]
    return features is None or feature.key in features


def _payload(
    *,
    pipeline: AlertPipeline,
    event: str,
    text: str,
    account: Account,
    feature: Feature | None,
    details: dict,
    occurred_at: datetime,
    usage_event: UsageEvent | None = None,
) -> dict:
    # Without a template the title is the bare event name ($event.name), as IngestLayer users expect.
    payload = {
        "event": event,
        "trigger": pipeline.trigger_type,
        "title": event,
        "text": text,
        "pipeline": {"id": pipeline.pk, "name": pipeline.name},
        "account": alert_account_context(account),
        "feature": _feature_context(feature) if feature is not None else None,
        "details": details,
        "occurred_at": occurred_at.isoformat(),
    }
    if pipeline.template:
        payload_with_template(payload, template=pipeline.template, usage_event=usage_event)
    return payload


def _user_context(event: UsageEvent | None) -> dict | None:
    user = event.end_user if event is not None else None
    return {"id": user.external_id, "email": user.email or None} if user is not None else None


def payload_with_template(payload: dict, *, template: dict, usage_event: UsageEvent | None) -> dict:
    """Add the template and its values to an alert payload; its title and text become the plain rendering
    (each destination renders again with its own escaping)."""
    values = template_values(
        event_name=payload["event"],
        quantity=usage_event.quantity if usage_event is not None else None,
        occurred_at=payload["occurred_at"],
        event_id=(usage_event.event_id or None) if usage_event is not None else None,
        properties=usage_event.properties if usage_event is not None else None,
        account={**(payload.get("account") or {}), "status": usage_event.account.status}
        if usage_event
        else payload.get("account"),
        user=_user_context(usage_event),
        feature=payload.get("feature"),
        pipeline_name=(payload.get("pipeline") or {}).get("name", ""),
    )
    payload["template"] = template
    payload["values"] = values
    if template.get("title", "").strip():
        payload["title"] = template_render(template["title"], values)
    if template.get("body", "").strip():
        payload["text"] = template_render(template["body"], values)
    return payload


# How many of the latest events of its features a preview looks through for one its pipeline would alert on.
PREVIEW_SCAN = 500


def preview_event(*, workspace: Workspace, pipeline: AlertPipeline) -> UsageEvent | None:
    """The latest event (of the last PREVIEW_SCAN of its features) that the unsaved `pipeline` would alert on:
    its features, plans, minimum quantity and filter. What the form's template preview renders."""
    keys = pipeline.trigger_config.get("features") or []
    for event in latest_events(workspace=workspace, feature_keys=keys, limit=PREVIEW_SCAN):
        if event.quantity >= pipeline.trigger_config.get("min_quantity", 1) and _event_ok(pipeline, event):
            return event
    return None


def preview_payload(*, event: UsageEvent, pipeline: AlertPipeline) -> dict:
    """The payload an event alert on `event` would carry for the unsaved `pipeline` (nothing stored)."""
    return _event_payload(pipeline, event)


def _event_payload(pipeline: AlertPipeline, event: UsageEvent) -> dict:
    account, feature = event.account, event.feature
    return _payload(
        pipeline=pipeline,
        event=feature.key,
        text=f"{account.name or account.external_id} used {feature.name or feature.key} ({event.quantity}).",
        account=account,
        feature=feature,
        details=_event_details(event),
        occurred_at=event.occurred_at,
        usage_event=event,
    )


def _event_details(event: UsageEvent) -> dict:
    details: dict = {"quantity": event.quantity, "occurred_at": event.occurred_at.isoformat()}
    if event.event_id:
        details["event_id"] = event.event_id
    if event.end_user is not None:
        details["user"] = event.end_user.email or event.end_user.external_id
    if event.properties:
        details["properties"] = event.properties
    return details


def _evaluate_event(pipeline: AlertPipeline, event: UsageEvent, now: datetime) -> list[AlertDelivery]:
    if event.quantity < pipeline.trigger_config.get("min_quantity", 1):
        return []
    return deliveries_create(
        pipeline=pipeline, payload=_event_payload(pipeline, event), dedupe_key=f"event:{event.pk}", now=now
    )


def _evaluate_free_plan(pipeline: AlertPipeline, event: UsageEvent, now: datetime) -> list[AlertDelivery]:
    from entitlements.selectors import effective_entitlement
    from entitlements.values import value_grants

    if event.quantity < pipeline.trigger_config.get("min_quantity", 1):
        return []
    account, feature = event.account, event.feature
    effective = effective_entitlement(account_id=account.pk, feature=feature, now=event.occurred_at)
    if value_grants(feature_type=feature.type, value=effective.value):
        return []
    day = event.occurred_at.astimezone(UTC).date()
    payload = _payload(
        pipeline=pipeline,
        event="paid_feature_on_free_plan",
        text=f"{account.name or account.external_id} ({account.plan or 'no plan'}) used {feature.name or feature.key}, "
        "which its plan does not grant: an upsell opportunity.",
        account=account,
        feature=feature,
        details=_event_details(event),
        occurred_at=event.occurred_at,
        usage_event=event,
    )
    # One alert per account × feature × UTC day, however often the feature is used that day.
    return deliveries_create(
        pipeline=pipeline,
        payload=payload,
        dedupe_key=f"free:{account.pk}:{feature.pk}:{day.isoformat()}",
        now=now,
    )


def _evaluate_threshold(
    pipeline: AlertPipeline, account: Account, feature: Feature, at: datetime, now: datetime
) -> list[AlertDelivery]:
    from entitlements.selectors import allowance_period, allowance_used, effective_entitlement
    from entitlements.values import value_grants

    if not feature.metered:
        return []
    effective = effective_entitlement(account_id=account.pk, feature=feature, now=at)
    if not value_grants(feature_type=feature.type, value=effective.value) or effective.value == "unlimited":
        return []
    try:
        limit = int(effective.value)
    except (TypeError, ValueError):
        return []
    if limit <= 0:
        return []  # a limit of 0 means "not entitled": never near it (and no allowance to read)
    period = allowance_period(feature=feature, effective=effective, at=at)
    used = allowance_used(account_id=account.pk, feature_id=feature.pk, period=period)
    period_start = period.start or NO_PERIOD_START
    created: list[AlertDelivery] = []
    for threshold in pipeline.trigger_config.get("percent", []):
        if not allowance_reached(used=used, limit=limit, percent=threshold):
            continue
        with transaction.atomic():
            _, new = AlertThresholdMark.objects.get_or_create(
                pipeline=pipeline,
                account=account,
                feature=feature,
                threshold=threshold,
                period_start=period_start,
                defaults={"workspace_id": pipeline.workspace_id, "created_at": now},
            )
            if not new:
                continue  # one alert per threshold per period
            payload = _payload(
                pipeline=pipeline,
                event=f"threshold.{threshold}",
                text=f"{account.name or account.external_id} reached {threshold}% of {feature.name or feature.key}: "
                f"{used} of {limit} {feature.unit_plural or 'units'} used this period ({used * 100 // limit}%).",
                account=account,
                feature=feature,
                details={
                    "threshold_percent": threshold,
                    "used": used,
                    "limit": limit,
                    "period_start": period.start.isoformat() if period.start else None,
                    "resets_at": period.end.isoformat() if period.end else None,
                },
                occurred_at=at,
            )
            created += deliveries_create(
                pipeline=pipeline,
                payload=payload,
                dedupe_key=f"threshold:{account.pk}:{feature.pk}:{threshold}:{period_start.isoformat()}",
                now=now,
            )
    return created


def alert_events_evaluate(*, workspace_id: int, event_ids: list[int], now: datetime) -> list[AlertDelivery]:
    """Run the workspace's enabled event, threshold and free-plan pipelines over stored events. Idempotent:
    deliveries are keyed by event (or by period for thresholds), so a retried task adds nothing."""
    pipelines = list(pipelines_enabled(workspace_id=workspace_id, trigger_types=EVENT_TRIGGERS))
    if not pipelines:
        return []
    events = list(
        UsageEvent.objects.filter(workspace_id=workspace_id, pk__in=event_ids)
        .select_related("account__owner", "feature", "end_user")
        .order_by("pk")
    )
    created: list[AlertDelivery] = []
    for pipeline in pipelines:
        matching = [e for e in events if _event_ok(pipeline, e)]
        if pipeline.trigger_type == TriggerType.EVENT:
            for event in matching:
                created += _evaluate_event(pipeline, event, now)
        elif pipeline.trigger_type == TriggerType.PAID_FEATURE_ON_FREE_PLAN:
            for event in matching:
                created += _evaluate_free_plan(pipeline, event, now)
        elif pipeline.trigger_type == TriggerType.THRESHOLD:
            latest: dict[tuple[int, int], UsageEvent] = {}
            for event in matching:
                if event.quantity > 0:
                    latest[(event.account_id, event.feature_id)] = event
            for event in latest.values():
                created += _evaluate_threshold(pipeline, event.account, event.feature, event.occurred_at, now)
    return created


# ------------------------------------------------------------------------------------------------------------
# Dormant and usage-drop: evaluated on a schedule (rollup_triggers.py) for the accounts that analytics' dormant
# and usage-drop selectors found, the dashboard lists' own: the evaluators never redefine them.
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountUsageWindow:
    """Net uses of one account in the current window and in the window of equal length before it."""

    current: int
    prior: int


def _accounts(workspace_id: int, account_ids: Iterable[int]) -> dict[int, Account]:
    return {
        a.pk: a
        for a in Account.objects.filter(workspace_id=workspace_id, pk__in=list(account_ids)).select_related("owner")
    }


def _window_alert(
    *, pipeline: AlertPipeline, account: Account, window_start: date, payload: dict, now: datetime
) -> list[AlertDelivery]:
    with transaction.atomic():
        _, new = AlertWindowMark.objects.get_or_create(
            pipeline=pipeline,
            account=account,
            window_start=window_start,
            defaults={"workspace_id": pipeline.workspace_id, "created_at": now},
        )
        if not new:
            return []  # one alert per account per window
        return deliveries_create(
            pipeline=pipeline,
            payload=payload,
            dedupe_key=f"window:{account.pk}:{window_start.isoformat()}",
            now=now,
        )


def alerts_evaluate_dormant(
    *,
    workspace_id: int,
    dormant: Mapping[int, date],
    now: datetime,
    pipeline_ids: Collection[int],
) -> list[AlertDelivery]:
    """Alert on dormant accounts (account pk → UTC day of its last use), as found for the `days` of the
    pipelines `pipeline_ids` by analytics' dormant selector; the pipelines' plan filters apply."""
    created: list[AlertDelivery] = []
    pipelines = pipelines_enabled(workspace_id=workspace_id, trigger_types=[TriggerType.DORMANT]).filter(
        pk__in=list(pipeline_ids)
    )
    accounts = _accounts(workspace_id, dormant)
    today = now.astimezone(UTC).date()
    for pipeline in pipelines:
        days = pipeline.trigger_config.get("days", 14)
        for account_id, last in sorted(dormant.items()):
            account = accounts.get(account_id)
            if account is None or not _plan_ok(pipeline, account):
                continue
            # The window is the dormant spell: it starts the day after the last use, so a new use starts a
            # new one.
            payload = _payload(
                pipeline=pipeline,
                event="account.dormant",
                text=f"{account.name or account.external_id} has gone dormant: no usage for {(today - last).days} "
                f"days (threshold: {days} days).",
                account=account,
                feature=None,
                details={"days": days, "last_used_on": last.isoformat()},
                occurred_at=now,
            )
            created += _window_alert(
                pipeline=pipeline, account=account, window_start=last + timedelta(days=1), payload=payload, now=now
            )
    return created


def alerts_evaluate_usage_drop(
    *,
    workspace_id: int,
    usage: Mapping[int, AccountUsageWindow],
    window_start: date,
    now: datetime,
    pipeline_ids: Collection[int],
) -> list[AlertDelivery]:
    """Alert on accounts whose usage dropped (account pk → its numbers), as found for the `days`, `features`
    and `percent` of the pipelines `pipeline_ids` by analytics' usage-drop selector over the window starting
    `window_start`; the pipelines' plan filters apply."""
    created: list[AlertDelivery] = []
    pipelines = pipelines_enabled(workspace_id=workspace_id, trigger_types=[TriggerType.USAGE_DROP]).filter(
        pk__in=list(pipeline_ids)
    )
    accounts = _accounts(workspace_id, usage)
    for pipeline in pipelines:
        percent, days = pipeline.trigger_config["percent"], pipeline.trigger_config["days"]
        for account_id, numbers in sorted(usage.items()):
            account = accounts.get(account_id)
            if account is None or numbers.prior <= 0 or not _plan_ok(pipeline, account):
                continue
            drop = (numbers.prior - max(numbers.current, 0)) * 100 / numbers.prior
            payload = _payload(
                pipeline=pipeline,
                event="usage.drop",
                text=f"{account.name or account.external_id}: usage down {drop:.0f}%, {numbers.current} uses in the "
                f"last {days} days against {numbers.prior} in the {days} days before (threshold: at least {percent}%).",
                account=account,
                feature=None,
                details={
                    "current": numbers.current,
                    "prior": numbers.prior,
                    "drop_percent": round(drop, 1),
                    "days": days,
                },
                occurred_at=now,
            )
            created += _window_alert(
                pipeline=pipeline, account=account, window_start=window_start, payload=payload, now=now
            )
    return created
