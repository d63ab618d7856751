"""Celery tasks of the usage app (autodiscovered as usage.tasks)."""

from celery import shared_task
from django.utils import timezone

from usage.allowances import allowance_counters_rebuild, allowance_counters_sync, allowance_differences_log
from usage.problems import ingestion_problems_prune


@shared_task(name="usage.allowance_counters_rebuild", acks_late=True)
def allowance_counters_rebuild_task(feature_id: int) -> int | None:
    """Rebuild a feature's allowance counters after its metering changed (queued by catalog.services)."""
    rebuilt = allowance_counters_rebuild(feature_id=feature_id)
    return rebuilt.days if rebuilt is not None else None


@shared_task(name="usage.allowance_counters_sync", acks_late=True)
def allowance_counters_sync_task() -> int:
    """Rebuild the counters of features whose rebuild message was lost."""
    return len(allowance_counters_sync())


@shared_task(name="usage.allowance_counters_verify", acks_late=True)
def allowance_counters_verify_task() -> int:
    """Recount every metered counter from the raw events and log any difference."""
    return allowance_differences_log()


@shared_task(name="usage.ingestion_problems_prune")
def ingestion_problems_prune_task() -> int:
    """Keep the ingestion problems table bounded (beat, hourly)."""
    return ingestion_problems_prune(now=timezone.now())
