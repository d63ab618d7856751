"""Segment-compatible tracking API: `POST /api/segment/v1/{batch,track,identify,group,page,screen,alias}`, so a
Segment or RudderStack client pointed at `https://<uptake>/api/segment` works unchanged (mapping: segment.py).

Answers as Segment's API does, so the official clients behave as they do with Segment: 200 `{"success": true}`
once every usable message is committed (messages that cannot be used are answered 200 too, and recorded as
ingestion problems); 400 for a body that is not JSON, over UPTAKE_SEGMENT_MAX_BATCH_BYTES (500 KB, after gzip
decoding) or holding a message over UPTAKE_SEGMENT_MAX_MESSAGE_BYTES (32 KB) — nothing stored, the clients do
not retry; 429 with `Retry-After` over the key's rate limit and 503 with `Retry-After` when the database is
unreachable — the clients retry those, and `messageId` (the event id) makes the retry store nothing twice.
Error bodies carry `code` and `message` at the top level (what the clients read) next to the project's
`error`/`errors`.
"""

import base64
import math

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication, ApiPrincipal, HasIngestScope
from core.body import BodyError, read_body
from core.errors import DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_ERRORS, error_body, error_payload
from core.ratelimit import api_key_rate_take

from .segment import segment_body_parse, segment_messages_ingest

_authentication = ApiKeyAuthentication()


class SegmentMessageSerializer(serializers.Serializer):
    """A Segment message (documentation only: messages are read as sent, unknown fields kept)."""

    type = serializers.ChoiceField(
        choices=["track", "identify", "group", "page", "screen", "alias"], required=False, help_text="In a batch."
    )
    messageId = serializers.CharField(required=False, help_text="Uptake's event id: a replay stores nothing.")
    userId = serializers.CharField(required=False)
    anonymousId = serializers.CharField(required=False)
    event = serializers.CharField(required=False, help_text="track: the feature, unless properties.feature_id.")
    properties = serializers.DictField(required=False)
    traits = serializers.DictField(required=False)
    groupId = serializers.CharField(required=False, help_text="group: the account's external id.")
    previousId = serializers.CharField(required=False)
    context = serializers.DictField(required=False, help_text="`context.groupId` names the account of a track.")
    timestamp = serializers.CharField(required=False)
    originalTimestamp = serializers.CharField(required=False)
    sentAt = serializers.CharField(required=False)
    writeKey = serializers.CharField(required=False, help_text="The API key, when not sent as Basic auth.")


class SegmentBatchSerializer(serializers.Serializer):
    batch = SegmentMessageSerializer(many=True)
    sentAt = serializers.CharField(required=False)
    writeKey = serializers.CharField(required=False)


class SegmentSuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class SegmentErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    code = serializers.CharField()
    message = serializers.CharField()
    error = serializers.DictField()
    errors = serializers.ListField(child=serializers.DictField())


def _error(status: int, code: str, message: str, *, retry_after: int | None = None) -> Response:
    body = error_body(code, message)
    response = Response({"success": False, **body, **error_payload(body)}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _database_unavailable() -> Response:
    return _error(
        503,
        DATABASE_UNAVAILABLE["code"],
        DATABASE_UNAVAILABLE["message"],
        retry_after=settings.UPTAKE_RETRY_AFTER_SECONDS,
    )


def _read_body(request) -> bytes:
    """The request body, gzip-decoded when `Content-Encoding: gzip` (core/body.py, as for /api/v1/events),
    within UPTAKE_SEGMENT_MAX_BATCH_BYTES; a body over it is a 400 here, as Segment answers (its clients do not
    retry a 400, where they would retry a 413)."""
    try:
        return read_body(request, max_bytes=settings.UPTAKE_SEGMENT_MAX_BATCH_BYTES)
    except BodyError as exc:
        if exc.status == 413:
            raise BodyError(exc.message, code=exc.code, status=400) from None
        raise


def _header_key(request) -> str | None:
    """The key of `Authorization: Basic base64(<key>:)` (what the clients send) or `Bearer <key>`; None
    without the header; AuthenticationFailed for another scheme or a malformed value."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    # Split on any whitespace, as the REST API's authentication does (`Bearer<TAB>key` is the same key).
    scheme, value = ([*header.split(None, 1), ""])[:2]
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            raise exceptions.AuthenticationFailed("The Basic credentials are not valid base64.") from None
        return decoded.partition(":")[0]
    raise exceptions.AuthenticationFailed("Use HTTP Basic with the API key as user name, or 'writeKey' in the body.")


def _principal(raw_key: object) -> ApiPrincipal:
    if not isinstance(raw_key, str) or not raw_key:
        raise exceptions.NotAuthenticated(
            "No write key: send the API key as the Basic auth user name, or as 'writeKey' in the body."
        )
    principal, _ = _authentication.authenticate_key(raw_key)
    if HasIngestScope.scope not in principal.scopes:
        raise exceptions.PermissionDenied(f"This API key lacks the '{HasIngestScope.scope}' scope.")
    return principal


def segment_handle(request, *, endpoint: str) -> Response:
    """One tracking API request: body limits, authentication (header before the body is parsed, else the
    body's writeKey), rate limit, then the messages."""
    try:
        raw = _read_body(request)
        header_key = _header_key(request)
        principal = _principal(header_key) if header_key is not None else None
        messages, body = segment_body_parse(
            raw, endpoint=endpoint, max_message_bytes=settings.UPTAKE_SEGMENT_MAX_MESSAGE_BYTES
        )
        if principal is None:
            principal = _principal(body.get("writeKey"))
    except BodyError as exc:
        return _error(exc.status, exc.code, exc.message)
    except exceptions.APIException as exc:
        code = exc.get_codes()
        return _error(exc.status_code, code if isinstance(code, str) else exc.default_code, str(exc.detail))
    except DATABASE_UNAVAILABLE_ERRORS:
        return _database_unavailable()
    allowed, wait = api_key_rate_take(principal)
    if not allowed:
        return _error(
            429, "throttled", "Over this key's rate limit; retry after the delay.", retry_after=max(1, math.ceil(wait))
        )
    try:
        segment_messages_ingest(
            workspace=principal.workspace, messages=messages, sent_at=body.get("sentAt"), received_at=timezone.now()
        )
    except DATABASE_UNAVAILABLE_ERRORS:
        return _database_unavailable()
    return Response({"success": True})


_RESPONSES = {
    200: OpenApiResponse(
        SegmentSuccessSerializer,
        description="Committed. Messages that could not be used are answered 200 too and recorded as ingestion "
        "problems (dashboard: Ingestion problems).",
    ),
    400: OpenApiResponse(
        SegmentErrorSerializer,
        description="Not JSON (`invalid_json`), an object naming a key twice (`duplicate_key`), not an object or "
        "batch (`invalid_body`), bad gzip "
        "(`invalid_gzip`), over 500 KB after decoding (`body_too_large`) or a message over 32 KB "
        "(`message_too_large`); nothing stored.",
    ),
    401: OpenApiResponse(SegmentErrorSerializer, description="No, invalid, expired or revoked write key."),
    415: OpenApiResponse(
        SegmentErrorSerializer, description="A Content-Encoding other than gzip (`unsupported_encoding`)."
    ),
    403: OpenApiResponse(SegmentErrorSerializer, description="The key lacks the `ingest` scope."),
    429: OpenApiResponse(SegmentErrorSerializer, description="Per-key rate limit; see `Retry-After`."),
    503: OpenApiResponse(SegmentErrorSerializer, description="Database unreachable; see `Retry-After`."),
}

_DESCRIPTIONS = {
    "batch": 'Up to 500 KB of messages of any type (`{"batch": [...]}`), applied in order.',
    "track": "A usage event: the feature is `properties.feature_id`, else the event name (a display name "
    "gets its key, `Project Created` → `project-created`); `properties.quantity` (default 1); the account is "
    "`context.groupId`, else `properties.account_id`, else the user's last group.",
    "identify": "Upserts the end user: `traits.email`, the other traits as attributes.",
    "group": "Upserts the account (`traits.name`, `website`/`domain`, `plan`, `owner_email`, the rest as "
    "attributes) and links the user to it.",
    "page": "Accepted and counted per day; not stored as usage.",
    "screen": "Accepted and counted per day; not stored as usage.",
    "alias": "Gives `userId` the account, e-mail and traits of `previousId`.",
}


class SegmentView(APIView):
    """Base of the seven endpoints: authentication, rate limit and errors are handled in segment_handle (the
    write key may be in the body, which DRF's authentication does not read)."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    endpoint = "batch"

    def post(self, request):
        return segment_handle(request._request, endpoint=self.endpoint)


def _view(endpoint: str) -> type[SegmentView]:
    request = SegmentBatchSerializer if endpoint == "batch" else SegmentMessageSerializer
    example = (
        {"batch": [{"type": "track", "messageId": "m-1", "userId": "u_7", "event": "Project Created"}]}
        if endpoint == "batch"
        else {"messageId": "m-1", "userId": "u_7", "event": "Project Created", "context": {"groupId": "acct_42"}}
    )

    @extend_schema(
        operation_id=f"segment_{endpoint}",
        summary=f"Segment tracking API: {endpoint}",
        description=_DESCRIPTIONS[endpoint]
        + "\n\nAuth (`SegmentWriteKey`): HTTP Basic with an `ingest` API key as user name and an empty "
        "password, or `writeKey` in the body.",
        request={"application/json": request},
        responses=_RESPONSES,
        examples=[OpenApiExample(endpoint, value=example, request_only=True)],
        tags=["segment"],
        auth=[{"SegmentWriteKey": []}],
    )
    def post(self, request):
        return segment_handle(request._request, endpoint=self.endpoint)

    return type(f"Segment{endpoint.title()}View", (SegmentView,), {"endpoint": endpoint, "post": post})


VIEWS = {endpoint: _view(endpoint) for endpoint in _DESCRIPTIONS}
