"""Demo usage history: 90 days of realistic events sent through the real ingestion path, then rolled up.

Shape of the data: a weekday/hour rhythm in the workspace's timezone (office hours, quiet weekends), accounts
with very different activity levels, features that grow, fade or went quiet more than 30 days ago, dormant
accounts (no events for the last 3–7 weeks), churned accounts that stopped before churning, and a few negative
corrections. Events go through `usage.services.events_ingest` in batches, so registration, dirty marks and
allowance counters behave exactly as in production; the workspace's late-event window is raised to 120 days
for the seeding (it is the demo workspace's setting, not an ingestion bypass).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from tqdm import tqdm

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature, Lifecycle

from .services import rollup_pending

BATCH_SIZE = 1000
# Relative activity per local weekday (Monday = 0) and local hour.
WEEKDAY_FACTOR = [1.0, 1.05, 1.0, 0.95, 0.8, 0.18, 0.12]
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 10, 28, 40, 42, 38, 22, 30, 38, 36, 30, 20, 12, 8, 6, 4, 2, 1]


@dataclass
class _FeaturePlan:
    feature: Feature
    weight: float
    trend: str  # stable | growing | fading | quiet
    quantity_like: bool

    def factor(self, age_days: int, days: int) -> float:
        """Relative popularity `age_days` before now (0 = today)."""
        progress = 1 - age_days / days  # 0 at the start of the history, 1 today
        if self.trend == "growing":
            return 0.05 + 1.6 * progress**2
        if self.trend == "fading":
            return max(0.02, 1.4 * (1 - progress) ** 1.5)
        if self.trend == "quiet":
            return 0.0 if age_days < 32 else 1.0
        return 1.0


def _plans(features: list[Feature], rng: random.Random) -> list[_FeaturePlan]:
    plans = []
    order = features[:]
    rng.shuffle(order)
    for rank, feature in enumerate(order, start=1):
        roll = rng.random()
        trend = "growing" if roll < 0.15 else "fading" if roll < 0.27 else "quiet" if roll < 0.35 else "stable"
        plans.append(
            _FeaturePlan(
                feature=feature,
                weight=1 / rank**0.9,  # Zipf-like: a few features carry most of the usage
                trend=trend,
                quantity_like=feature.type in (Feature.Type.QUANTITY, Feature.Type.RANGE),
            )
        )
    return plans


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, int(rng.gauss(mean, math.sqrt(mean)) + 0.5))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _payload(feature: Feature, account: Account, user: EndUser | None, at: datetime, quantity: int) -> dict:
    event = {
        "account_id": account.external_id,
        "feature_id": feature.key,
        "product_id": feature.product.key,
        "quantity": quantity,
        "timestamp": at.isoformat(),
    }
    if feature.module_id:
        event["module_id"] = feature.module.key
    if user is not None:
        event["user_id"] = user.external_id
    return event


def usage_history(
    *, workspace: Workspace, rng: random.Random, now: datetime, days: int = 90, mean_daily_events: float = 6.0
) -> list[dict]:
    """The demo's event payloads, oldest first (pure generation; nothing is stored)."""
    zone = ZoneInfo(workspace.timezone or "UTC")
    features = list(
        Feature.objects.filter(workspace=workspace, status=Lifecycle.ACTIVE)
        .select_related("product", "module")
        .order_by("key")
    )
    accounts = list(Account.objects.filter(workspace=workspace).order_by("external_id"))
    if not features or not accounts:
        return []
    users: dict[int, list[EndUser]] = {}
    for user in EndUser.objects.filter(workspace=workspace).order_by("account_id", "external_id"):
        users.setdefault(user.account_id, []).append(user)
    plans = _plans(features, rng)
    local_now = now.astimezone(zone)
    events: list[dict] = []
    for account in accounts:
        level = mean_daily_events * rng.lognormvariate(0, 0.9)
        adopted = [p for p in plans if rng.random() < 0.25 + 0.6 * p.weight]
        if not adopted:
            continue
        affinity = [p.weight * rng.uniform(0.3, 1.7) for p in adopted]
        # Last active day, counted back from today: dormant accounts stopped 3–7 weeks ago, churned ones earlier.
        if account.status == Account.Status.CHURNED:
            stop_age = rng.randint(35, days)
        elif rng.random() < 0.1:
            stop_age = rng.randint(21, 49)
        else:
            stop_age = 0
        people = users.get(account.pk, [])
        history: list[dict] = []
        for age in range(days - 1, stop_age - 1, -1):
            day = (local_now - timedelta(days=age)).date()
            mean = level * WEEKDAY_FACTOR[day.weekday()]
            for _ in range(_poisson(rng, mean)):
                weights = [a * p.factor(age, days) for a, p in zip(affinity, adopted, strict=True)]
                if not any(weights):
                    continue
                plan = rng.choices(adopted, weights)[0]
                hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
                local = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=zone)
                at = local.astimezone(UTC)
                if at > now:
                    continue
                quantity = rng.choice([1, 1, 2, 3, 5, 10]) if plan.quantity_like else 1
                user = rng.choice(people) if people else None
                event = _payload(plan.feature, account, user, at, quantity)
                history.append(event)
                if rng.random() < 0.006:
                    # A correction: the vendor reverts an event a little later.
                    fix_at = min(now, at + timedelta(minutes=rng.randint(5, 600)))
                    history.append({**event, "quantity": -quantity, "timestamp": fix_at.isoformat()})
        events.extend(history)
    events.sort(key=lambda e: e["timestamp"])
    return events


def seed_usage(
    *,
    workspace: Workspace,
    rng: random.Random,
    now: datetime | None = None,
    days: int = 90,
    progress: bool = True,
) -> dict:
    """Send `days` days of demo usage through `events_ingest` in batches, then roll it up."""
    from usage.services import events_ingest

    now = now or timezone.now()
    if workspace.late_event_window_days < days + 30:
        workspace.late_event_window_days = days + 30
        workspace.save(update_fields=["late_event_window_days"])
    events = usage_history(workspace=workspace, rng=rng, now=now, days=days)
    accepted = rejected = 0
    bar = tqdm(total=len(events), unit="event", desc="usage history", disable=not progress, leave=False)
    for start in range(0, len(events), BATCH_SIZE):
        result = events_ingest(workspace=workspace, payload=events[start : start + BATCH_SIZE], now=now)
        accepted += result.accepted
        rejected += len(result.rejected)
        bar.update(min(BATCH_SIZE, len(events) - start))
    bar.close()
    report = rollup_pending(now=now)
    return {
        "events": len(events),
        "accepted": accepted,
        "rejected": rejected,
        "days_rolled_up": report.days_rolled_up,
    }


def seed_analytics(*, ctx) -> None:
    """seed_demo step: 90 days of usage for the demo workspace (see accounts.demo.DemoContext)."""
    show = ctx.progress is not None
    summary = seed_usage(workspace=ctx.workspace, rng=ctx.rng("usage"), now=ctx.now, days=90, progress=show)
    ctx.log(
        f"{summary['accepted']} usage events over 90 days ({summary['rejected']} rejected), "
        f"{summary['days_rolled_up']} days rolled up"
    )
