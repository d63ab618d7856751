"""Reads for alert pipelines: pipelines and channels of a workspace, and their delivery logs."""

from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from accounts.models import Workspace
from catalog.models import Feature, Lifecycle
from core.errors import NotFound
from usage.models import UsageEvent

from .models import AlertChannel, AlertDelivery, AlertPipeline, AlertPipelineChannel

_CHANNEL_LINKS = Prefetch(
    "channel_links", queryset=AlertPipelineChannel.objects.select_related("channel").order_by("position", "id")
)


def pipeline_channels(pipeline: AlertPipeline) -> list[AlertChannel]:
    """The pipeline's channels in its order (from the prefetch of pipeline_list / pipeline_get)."""
    return [link.channel for link in pipeline.channel_links.all()]


def pipeline_list(*, workspace: Workspace) -> QuerySet[AlertPipeline]:
    return AlertPipeline.objects.filter(workspace=workspace).prefetch_related(_CHANNEL_LINKS).order_by("id")


def pipeline_get(*, workspace: Workspace, pipeline_id: int) -> AlertPipeline:
    """A pipeline of this workspace; another workspace's pipeline is as unknown as a missing one (404)."""
    pipeline = pipeline_list(workspace=workspace).filter(pk=pipeline_id).first()
    if pipeline is None:
        raise NotFound(f"No pipeline {pipeline_id} in this workspace.", field="id")
    return pipeline


def pipelines_enabled(*, workspace_id: int, trigger_types: Iterable[str]) -> QuerySet[AlertPipeline]:
    return (
        AlertPipeline.objects.filter(workspace_id=workspace_id, enabled=True, trigger_type__in=list(trigger_types))
        .prefetch_related(_CHANNEL_LINKS)
        .order_by("id")
    )


def delivery_list(*, pipeline: AlertPipeline) -> QuerySet[AlertDelivery]:
    return AlertDelivery.objects.filter(pipeline=pipeline).order_by("-id")


def delivery_page(*, pipeline: AlertPipeline, before: int | None, limit: int) -> tuple[list[AlertDelivery], int | None]:
    """One page of the delivery log, newest first: the `limit` deliveries older than id `before` (the newest
    without it), and the id to page on from when older ones exist (None on the last page)."""
    log = delivery_list(pipeline=pipeline).select_related("channel")
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


def channel_list(*, workspace: Workspace) -> QuerySet[AlertChannel]:
    return (
        AlertChannel.objects.filter(workspace=workspace)
        .prefetch_related(
            Prefetch("pipeline_links", queryset=AlertPipelineChannel.objects.select_related("pipeline").order_by("id"))
        )
        .order_by("name", "id")
    )


def channel_get(*, workspace: Workspace, channel_id: int) -> AlertChannel:
    """A channel of this workspace; another workspace's channel is as unknown as a missing one (404)."""
    channel = channel_list(workspace=workspace).filter(pk=channel_id).first()
    if channel is None:
        raise NotFound(f"No channel {channel_id} in this workspace.", field="id")
    return channel


def channel_pipelines(channel: AlertChannel) -> list[AlertPipeline]:
    """The pipelines posting to a channel (from the prefetch of channel_list / channel_get)."""
    return [link.pipeline for link in channel.pipeline_links.all()]


def channel_delivery_page(*, channel: AlertChannel, limit: int) -> list[AlertDelivery]:
    """The channel's latest deliveries, newest first (every pipeline's, its test messages and summaries)."""
    return list(AlertDelivery.objects.filter(channel=channel).select_related("pipeline").order_by("-id")[:limit])


def catalog_feature_choices(*, workspace: Workspace) -> list[tuple[str, str]]:
    """(key, "Name (key)") of the workspace's features that are not archived, for the pipeline form's picker."""
    rows = (
        Feature.objects.filter(workspace=workspace)
        .exclude(status=Lifecycle.ARCHIVED)
        .order_by("name")
        .values_list("key", "name")
    )
    return [(key, f"{name} ({key})" if name and name != key else key) for key, name in rows]


def latest_events(*, workspace: Workspace, feature_keys: list[str], limit: int) -> list[UsageEvent]:
    """The workspace's latest `limit` events (of these features, when given), newest first, with what a
    pipeline's filter reads: the events a template preview picks from."""
    events = UsageEvent.objects.filter(workspace=workspace)
    if feature_keys:
        events = events.filter(feature__key__in=feature_keys)
    return list(events.select_related("account__owner", "feature", "end_user").order_by("-occurred_at", "-id")[:limit])
