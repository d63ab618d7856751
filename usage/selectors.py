"""Reads of the usage app for pages and the admin: ingestion problems and the Segment API's ignored calls."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, QuerySet, Sum

from accounts.models import Workspace

from .models import IngestionProblem, SegmentIgnoredDay

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
