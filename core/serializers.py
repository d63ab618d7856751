"""The error payload every API answers with (config.api.exception_handler), described for the OpenAPI schema.

config/schema.py adds the errors every operation shares; a view declares only those of its own domain, e.g.
`extend_schema(responses={200: ..., 402: error_response("...")})`.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField(help_text="What is wrong, in words.")
    field = serializers.CharField(required=False, help_text="The field, parameter or path at fault, if one is.")


class ErrorSerializer(serializers.Serializer):
    """Every 4xx and 5xx of the API: the first error, and all of them."""

    error = ErrorBodySerializer()
    errors = ErrorBodySerializer(many=True)


def error_response(description: str) -> OpenApiResponse:
    """An error answer with the shared error schema, for a view's own `extend_schema(responses=...)`."""
    return OpenApiResponse(ErrorSerializer, description=description)
