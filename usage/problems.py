"""Writes for ingestion problems: messages answered 200 that could not be stored as usage (usage.models
IngestionProblem). Recorded once per (message id, reason), so a replayed batch records nothing new; pruned by
age and by rows per workspace so the table stays bounded."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from accounts.models import Workspace
from core.text import echo, text_problem
from entitlements.models import EVENT_ID_MAX_LENGTH

from .models import IngestionProblem

PAYLOAD_EXCERPT_CHARS = 1000


@dataclass(frozen=True)
class Problem:
    """One message that could not be used, and why (`reason` is a stable code)."""

    reason: str
    message: str
    message_type: str = ""
    message_id: str | None = None
    payload: object = None


def payload_excerpt(payload: object) -> str:
    """The start of the message as JSON (at most PAYLOAD_EXCERPT_CHARS characters), enough to find it."""
    if payload is None:
        return ""
    try:
        text = json.dumps(payload, ensure_ascii=False, default=str, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = repr(payload)
    text = echo(text)  # what PostgreSQL can store: NUL and lone surrogates replaced
    return text if len(text) <= PAYLOAD_EXCERPT_CHARS else text[: PAYLOAD_EXCERPT_CHARS - 1] + "…"


def ingestion_problems_record(
    *, workspace: Workspace, problems: list[Problem], source: str, now: datetime
) -> list[IngestionProblem]:
    """Store the problems; one already recorded for the same message id and reason is not stored again."""
    if not problems:
        return []
    rows = [
        IngestionProblem(
            workspace=workspace,
            source=source,
            reason=echo(problem.reason, limit=40),
            message=echo(problem.message),
            message_type=echo(problem.message_type, limit=16),
            message_id=_message_id(problem.message_id),
            payload_excerpt=payload_excerpt(problem.payload),
            created_at=now,
        )
        for problem in problems
    ]
    return IngestionProblem.objects.bulk_create(rows, ignore_conflicts=True)


def _message_id(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > EVENT_ID_MAX_LENGTH or text_problem(value):
        return None
    return value.strip()


@transaction.atomic
def ingestion_problems_prune(*, now: datetime) -> int:
    """Delete problems older than the retention and, per workspace, all but the newest MAX_ROWS; return how
    many rows were deleted."""
    cutoff = now - timedelta(days=settings.UPTAKE_INGESTION_PROBLEMS_RETENTION_DAYS)
    deleted, _ = IngestionProblem.objects.filter(created_at__lt=cutoff).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM usage_ingestionproblem WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
            "(PARTITION BY workspace_id ORDER BY created_at DESC, id DESC) AS n FROM usage_ingestionproblem) ranked "
            "WHERE n > %s)",
            [settings.UPTAKE_INGESTION_PROBLEMS_MAX_ROWS],
        )
        deleted += cursor.rowcount
    return deleted
