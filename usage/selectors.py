"""Reads of the usage app: ingestion problems and the Segment API's ignored calls (pages, admin), and one end
user's usage (API)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Max, Q, QuerySet, Sum

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature
from core.errors import NotFound

from .models import IngestionProblem, SegmentIgnoredDay, UsageEvent

# The dashboard header counts the problems of this many recent days.
RECENT_PROBLEM_DAYS = 7


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int
    last_at: datetime


def ingestion_problems_recent(*, workspace: Workspace) -> QuerySet[IngestionProblem]:
    """The workspace's ingestion problems, newest first."""
    return IngestionProblem.objects.filter(workspace=workspace).order_by("-created_at", "-id")


def ingestion_problem_counts(*, workspace: Workspace, since: datetime) -> list[ReasonCount]:
    """Problems per reason since `since`, most frequent first (ties by reason)."""
    rows = (
        IngestionProblem.objects.filter(workspace=workspace, created_at__gte=since)
        .values("reason")
        .annotate(count=Count("id"), last_at=Max("created_at"))
        .order_by("-count", "reason")
    )
    return [ReasonCount(reason=r["reason"], count=r["count"], last_at=r["last_at"]) for r in rows]


def ingestion_problem_count(*, workspace: Workspace, now: datetime) -> int:
    """How many problems the workspace had in the last RECENT_PROBLEM_DAYS days (the dashboard header)."""
    since = now - timedelta(days=RECENT_PROBLEM_DAYS)
    return IngestionProblem.objects.filter(workspace=workspace, created_at__gte=since).count()


def segment_ignored_counts(*, workspace: Workspace, since_day) -> dict[str, int]:
    """`page` and `screen` calls acknowledged and not stored, per kind, since `since_day` (a UTC date)."""
    rows = (
        SegmentIgnoredDay.objects.filter(workspace=workspace, day__gte=since_day)
        .values("kind")
        .annotate(total=Sum("count"))
        .order_by("kind")
    )
    return {r["kind"]: r["total"] for r in rows}


@dataclass(frozen=True)
class FeatureUse:
    feature_id: str
    name: str
    uses: int
    events: int
    last_used_at: datetime | None


@dataclass(frozen=True)
class EndUserUsage:
    account_id: str
    user_id: str
    start: date
    end: date
    uses: int
    events: int
    features: list[FeatureUse]


def end_user_usage(
    *, workspace: Workspace, account_id: str, user_id: str, feature_key: str | None, start: date, end: date
) -> EndUserUsage:
    """Net uses and events of one end user of an account per feature over UTC days start..end (inclusive), from
    the raw events of that one account (exact and current, as the record call that just counted them)."""
    account = Account.objects.filter(workspace=workspace, external_id=account_id).first()
    if account is None:
        raise NotFound(f"No account '{account_id}' in this workspace.", code="unknown_account")
    end_user = EndUser.objects.filter(account=account, external_id=user_id).first()
    if end_user is None:
        raise NotFound(f"Account '{account_id}' has no end user '{user_id}'.", code="unknown_user")
    events = UsageEvent.objects.filter(
        workspace=workspace,
        account=account,
        end_user=end_user,
        occurred_at__gte=datetime.combine(start, time.min, tzinfo=UTC),
        occurred_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )
    if feature_key is not None:
        feature = Feature.objects.filter(workspace=workspace, key=feature_key).first()
        if feature is None:
            raise NotFound(f"No feature '{feature_key}' in this workspace.", code="unknown_feature")
        events = events.filter(feature=feature)
    rows = (
        events.values("feature__key", "feature__name")
        .annotate(uses=Sum("quantity"), events=Count("id"), last=Max("occurred_at", filter=Q(quantity__gt=0)))
        .order_by("feature__key")
    )
    features = [
        FeatureUse(
            feature_id=r["feature__key"],
            name=r["feature__name"],
            uses=r["uses"],
            events=r["events"],
            last_used_at=r["last"],
        )
        for r in rows
    ]
    return EndUserUsage(
        account_id=account.external_id,
        user_id=end_user.external_id,
        start=start,
        end=end,
        uses=sum(f.uses for f in features),
        events=sum(f.events for f in features),
        features=features,
    )
