"""REST for alert pipelines (scope `admin`): /api/v1/pipelines[/{id}], /deliveries and /test."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasAdminScope
from core.errors import DomainError

from . import selectors, services
from .models import AlertDelivery, AlertPipeline
from .serializers import DeliveryOutput, PipelineInput, PipelineOutput

_FIELDS = ("name", "enabled", "trigger", "destinations")


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ParseError("The body must be a JSON object.")
    unknown = sorted(set(request.data) - set(_FIELDS))
    if unknown:
        raise DomainError(
            f"Unknown field '{unknown[0]}'; a pipeline takes {', '.join(_FIELDS)}.",
            code="unknown_field",
            field=unknown[0],
        )
    return request.data


class PipelineListApi(ListModelMixin, GenericAPIView):
    queryset = AlertPipeline.objects.none()  # the model, for the schema; rows come from get_queryset
    permission_classes = [HasAdminScope]
    serializer_class = PipelineOutput

    def get_queryset(self):
        return selectors.pipeline_list(workspace=self.request.user.workspace)

    @extend_schema(operation_id="pipelines_list")
    def get(self, request):
        return self.list(request)

    @extend_schema(request=PipelineInput, responses={201: PipelineOutput}, operation_id="pipelines_create")
    def post(self, request):
        body = _body(request)
        for required in ("name", "trigger", "destinations"):
            if required not in body:
                raise DomainError(f"{required} is required.", code="missing_field", field=required)
        pipeline = services.pipeline_create(
            workspace=request.user.workspace,
            name=body["name"],
            enabled=body.get("enabled", True),
            trigger=body["trigger"],
            destinations=body["destinations"],
        )
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline.pk)
        return Response(PipelineOutput(pipeline).data, status=status.HTTP_201_CREATED)


class PipelineDetailApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(responses=PipelineOutput, operation_id="pipelines_retrieve")
    def get(self, request, pipeline_id: int):
        return Response(
            PipelineOutput(selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)).data
        )

    def _update(self, request, pipeline_id: int, *, partial: bool):
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)
        body = _body(request)
        if not partial:
            for required in ("name", "trigger", "destinations"):
                if required not in body:
                    raise DomainError(
                        f"{required} is required (use PATCH to change some fields).",
                        code="missing_field",
                        field=required,
                    )
            body = {"enabled": True, **body}
        services.pipeline_update(pipeline=pipeline, **{k: body[k] for k in _FIELDS if k in body})
        return Response(
            PipelineOutput(selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)).data
        )

    @extend_schema(request=PipelineInput, responses=PipelineOutput, operation_id="pipelines_update")
    def put(self, request, pipeline_id: int):
        return self._update(request, pipeline_id, partial=False)

    @extend_schema(request=PipelineInput, responses=PipelineOutput, operation_id="pipelines_partial_update")
    def patch(self, request, pipeline_id: int):
        return self._update(request, pipeline_id, partial=True)

    @extend_schema(responses={204: None}, operation_id="pipelines_destroy")
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

    @extend_schema(operation_id="pipelines_deliveries")
    def get(self, request, pipeline_id: int):
        return self.list(request)


class PipelineTestApi(APIView):
    permission_classes = [HasAdminScope]

    @extend_schema(request=None, responses={202: DeliveryOutput(many=True)}, operation_id="pipelines_test")
    def post(self, request, pipeline_id: int):
        pipeline = selectors.pipeline_get(workspace=request.user.workspace, pipeline_id=pipeline_id)
        deliveries = services.pipeline_test_send(pipeline=pipeline, now=timezone.now())
        return Response(DeliveryOutput(deliveries, many=True).data, status=status.HTTP_202_ACCEPTED)
