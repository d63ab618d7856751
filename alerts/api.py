"""REST for alert pipelines and channels (scope `admin`): /api/v1/pipelines[/{id}], /deliveries and /test;
/api/v1/channels[/{id}] and /test."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasAdminScope
from core.errors import DomainError
from core.serializers import ErrorSerializer

from . import channels, selectors, services
from .models import AlertChannel, AlertDelivery, AlertPipeline
from .serializers import ChannelInput, ChannelOutput, DeliveryOutput, PipelineInput, PipelineOutput

_FIELDS = ("name", "enabled", "trigger", "channels", "destinations", "filter", "template")


def _errors(*statuses: int) -> dict:
    """The error answers an operation documents (the project's error payload)."""
    described = {
        400: "A field is missing or wrong; the message names it. Nothing was stored.",
        401: "Missing, invalid, expired or revoked API key.",
        403: "The key lacks the `admin` scope.",
        404: "No such object in this workspace.",
        409: "Conflicts with what exists (a name or target already taken, a channel in use).",
        429: "Per-key rate limit; see `Retry-After`.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in (401, 403, *statuses)}


def _body(request, fields: tuple[str, ...] = _FIELDS, noun: str = "a pipeline") -> dict:
    if not isinstance(request.data, dict):
        raise ParseError("The body must be a JSON object.")
    unknown = sorted(set(request.data) - set(fields))
    if unknown:
        raise DomainError(
            f"Unknown field '{unknown[0]}'; {noun} takes {', '.join(fields)}.",
            code="unknown_field",
            field=unknown[0],
        )
    return request.data


def _required_channels(body: dict, hint: str = "") -> None:
    if "channels" not in body and "destinations" not in body:
        raise DomainError(
            f"channels is required: a list of channel ids (or destinations described inline){hint}.",
            code="missing_field",
            field="channels",
        )


class PipelineListApi(ListModelMixin, GenericAPIView):
    queryset = AlertPipeline.objects.none()  # the model, for the schema; rows come from get_queryset
    permission_classes = [HasAdminScope]
    serializer_class = PipelineOutput

    def get_queryset(self):
        return selectors.pipeline_list(workspace=self.request.user.workspace)

    @extend_schema(responses={200: PipelineOutput(many=True), **_errors()}, operation_id="pipelines_list")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        request=PipelineInput, responses={201: PipelineOutput, **_errors(400, 409)}, operation_id="pipelines_create"
    )
    def post(self, request):
        body = _body(request)
        for required in ("name", "trigger"):
            if required not in body:
                raise DomainError(f"{required} is required.", code="missing_field", field=required)
        _required_channels(body)
        pipeline = services.pipeline_create(
            workspace=request.user.workspace,
            name=body["name"],
            enabled=body.get("enabled", True),
            trigger=body["trigger"],
            channels=body.get("channels"),
            destinations=body.get("destinations"),
            filter=body.get("filter"),
            template=body.get("template"),
        )
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline.pk)
        return Response(PipelineOutput(pipeline).data, status=status.HTTP_201_CREATED)


class PipelineDetailApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(responses={200: PipelineOutput, **_errors(404)}, operation_id="pipelines_retrieve")
    def get(self, request, pipeline_id: int):
        return Response(
            PipelineOutput(selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)).data
        )

    def _update(self, request, pipeline_id: int, *, partial: bool):
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)
        body = _body(request)
        if not partial:
            for required in ("name", "trigger"):
                if required not in body:
                    raise DomainError(
                        f"{required} is required (use PATCH to change some fields).",
                        code="missing_field",
                        field=required,
                    )
            _required_channels(body, " (use PATCH to change some fields)")
            body = {"enabled": True, **body}
        services.pipeline_update(pipeline=pipeline, **{k: body[k] for k in _FIELDS if k in body})
        return Response(
            PipelineOutput(selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)).data
        )

    @extend_schema(
        request=PipelineInput,
        responses={200: PipelineOutput, **_errors(400, 404, 409)},
        operation_id="pipelines_update",
    )
    def put(self, request, pipeline_id: int):
        return self._update(request, pipeline_id, partial=False)

    @extend_schema(
        request=PipelineInput,
        responses={200: PipelineOutput, **_errors(400, 404, 409)},
        operation_id="pipelines_partial_update",
    )
    def patch(self, request, pipeline_id: int):
        return self._update(request, pipeline_id, partial=True)

    @extend_schema(responses={204: None, **_errors(404)}, operation_id="pipelines_destroy")
    def delete(self, request, pipeline_id: int):
        services.pipeline_delete(
            pipeline=selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PipelineDeliveriesApi(ListModelMixin, GenericAPIView):
    queryset = AlertDelivery.objects.none()  # the model, for the schema; rows come from get_queryset
    permission_classes = [HasAdminScope]
    serializer_class = DeliveryOutput

    def get_queryset(self):
        pipeline = selectors.pipeline_get(workspace=self.request.user.workspace, pipeline_id=self.kwargs["pipeline_id"])
        return selectors.delivery_list(pipeline=pipeline)

    @extend_schema(responses={200: DeliveryOutput(many=True), **_errors(404)}, operation_id="pipelines_deliveries")
    def get(self, request, pipeline_id: int):
        return self.list(request)


class PipelineTestApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(
        request=None, responses={202: DeliveryOutput(many=True), **_errors(404)}, operation_id="pipelines_test"
    )
    def post(self, request, pipeline_id: int):
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)
        deliveries = services.pipeline_test_send(pipeline=pipeline, now=timezone.now())
        return Response(DeliveryOutput(deliveries, many=True).data, status=status.HTTP_202_ACCEPTED)


_CHANNEL_FIELDS = channels.CHANNEL_FIELDS


class ChannelListApi(ListModelMixin, GenericAPIView):
    queryset = AlertChannel.objects.none()  # the model, for the schema; rows come from get_queryset
    permission_classes = [HasAdminScope]
    serializer_class = ChannelOutput

    def get_queryset(self):
        return selectors.channel_list(workspace=self.request.user.workspace)

    @extend_schema(responses={200: ChannelOutput(many=True), **_errors()}, operation_id="channels_list")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        request=ChannelInput, responses={201: ChannelOutput, **_errors(400, 409)}, operation_id="channels_create"
    )
    def post(self, request):
        body = _body(request, _CHANNEL_FIELDS, "a channel")
        channel = channels.channel_create(workspace=request.user.workspace, spec=body, field="channel")
        channel = selectors.channel_get(workspace=request.user.workspace, channel_id=channel.pk)
        return Response(ChannelOutput(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(responses={200: ChannelOutput, **_errors(404)}, operation_id="channels_retrieve")
    def get(self, request, channel_id: int):
        return Response(
            ChannelOutput(selectors.channel_get(workspace=request.user.workspace, channel_id=channel_id)).data
        )

    @extend_schema(
        request=ChannelInput,
        responses={200: ChannelOutput, **_errors(400, 404, 409)},
        operation_id="channels_update",
        description="Replaces the channel's settings; a secret, token or URL left out or sent back masked "
        "(`••••abcd`) keeps the stored one.",
    )
    def put(self, request, channel_id: int):
        channel = selectors.channel_get(workspace=request.user.workspace, channel_id=channel_id)
        body = _body(request, _CHANNEL_FIELDS, "a channel")
        channels.channel_update(channel=channel, spec=body, field="channel")
        return Response(
            ChannelOutput(selectors.channel_get(workspace=request.user.workspace, channel_id=channel_id)).data
        )

    @extend_schema(responses={204: None, **_errors(404, 409)}, operation_id="channels_destroy")
    def delete(self, request, channel_id: int):
        channels.channel_delete(channel=selectors.channel_get(workspace=request.user.workspace, channel_id=channel_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(request=None, responses={202: DeliveryOutput, **_errors(404)}, operation_id="channels_test")
    def post(self, request, channel_id: int):
        channel = selectors.channel_get(workspace=request.user.workspace, channel_id=channel_id)
        delivery = channels.channel_test_send(channel=channel, now=timezone.now())
        return Response(DeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)
