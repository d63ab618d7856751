"""Routes of the pipelines and channels API, included by usage/urls.py under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("pipelines", api.PipelineListApi.as_view(), name="pipeline-list"),
    path("pipelines/<int:pipeline_id>", api.PipelineDetailApi.as_view(), name="pipeline-detail"),
    path(
        "pipelines/<int:pipeline_id>/deliveries",
        api.PipelineDeliveriesApi.as_view(),
        name="pipeline-deliveries",
    ),
    path("pipelines/<int:pipeline_id>/test", api.PipelineTestApi.as_view(), name="pipeline-test"),
    path("channels", api.ChannelListApi.as_view(), name="channel-list"),
    path("channels/<int:channel_id>", api.ChannelDetailApi.as_view(), name="channel-detail"),
    path("channels/<int:channel_id>/test", api.ChannelTestApi.as_view(), name="channel-test"),
]
