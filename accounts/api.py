"""API of the accounts app: which workspace an API key belongs to."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import HasReadScope


class WorkspaceOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    timezone = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField(), help_text="the calling key's scopes")


class WorkspaceApi(APIView):
    """GET /api/v1/workspace (scope `read`): the workspace of the calling key, and the key's scopes."""

    permission_classes = [HasReadScope]

    @extend_schema(responses=WorkspaceOutputSerializer)
    def get(self, request: Request) -> Response:
        workspace = request.user.workspace
        return Response(
            WorkspaceOutputSerializer(
                {
                    "slug": workspace.slug,
                    "name": workspace.name,
                    "tier": workspace.tier,
                    "timezone": workspace.timezone,
                    "scopes": list(request.user.scopes),
                }
            ).data
        )
