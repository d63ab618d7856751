"""The error payload every API answers with (config.api.exception_handler), described for the OpenAPI schema."""

from rest_framework import serializers


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False)


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
    errors = ErrorBodySerializer(many=True)
