"""Reads for alert pipelines: pipelines of a workspace, their destinations and their delivery log."""

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from accounts.models import Workspace
from core.errors import NotFound

from .models import AlertDelivery, AlertDestination, AlertPipeline


def pipeline_list(*, workspace: Workspace) -> QuerySet[AlertPipeline]:
    return (
        AlertPipeline.objects.filter(workspace=workspace)
        .prefetch_related(Prefetch("destinations", queryset=AlertDestination.objects.order_by("id")))
        .order_by("id")
    )


def pipeline_get(*, workspace: Workspace, pipeline_id: int) -> AlertPipeline:
    """A pipeline of this workspace; another workspace's pipeline is as unknown as a missing one (404)."""
    pipeline = pipeline_list(workspace=workspace).filter(pk=pipeline_id).first()
    if pipeline is None:
        raise NotFound(f"No pipeline {pipeline_id} in this workspace.", field="id")
    return pipeline


def pipelines_enabled(*, workspace_id: int, trigger_types: Iterable[str]) -> QuerySet[AlertPipeline]:
    return (
        AlertPipeline.objects.filter(workspace_id=workspace_id, enabled=True, trigger_type__in=list(trigger_types))
        .prefetch_related("destinations")
        .order_by("id")
    )


def delivery_list(*, pipeline: AlertPipeline) -> QuerySet[AlertDelivery]:
    return AlertDelivery.objects.filter(pipeline=pipeline).order_by("-id")


def delivery_page(*, pipeline: AlertPipeline, before: int | None, limit: int) -> tuple[list[AlertDelivery], int | None]:
    """One page of the delivery log, newest first: the `limit` deliveries older than id `before` (the newest
    without it), and the id to page on from when older ones exist (None on the last page)."""
    log = delivery_list(pipeline=pipeline).select_related("destination")
    if before is not None:
        log = log.filter(pk__lt=before)
    deliveries = list(log[: limit + 1])
    older = deliveries[limit - 1].pk if len(deliveries) > limit else None
    return deliveries[:limit], older


def pipeline_workspaces_with(*, trigger_types: Iterable[str]) -> list[int]:
    """Ids of the workspaces that have an enabled pipeline of one of these trigger types."""
    return list(
        AlertPipeline.objects.filter(enabled=True, trigger_type__in=list(trigger_types))
        .order_by("workspace_id")
        .values_list("workspace_id", flat=True)
        .distinct()
    )
