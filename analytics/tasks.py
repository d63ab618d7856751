"""Celery adapters for analytics: read the clock, call the service."""

from celery import shared_task
from django.utils import timezone

from .services import rollup_pending


@shared_task(name="analytics.rollup_pending", acks_late=True)
def rollup_pending_task() -> dict:
    """Roll up every dirty (workspace, UTC day); idempotent, safe to run twice at once or retry."""
    report = rollup_pending(now=timezone.now())
    return {"rolled_up": report.days_rolled_up, "skipped_locked": report.days_skipped_locked}
