"""Usage API: `POST /api/v1/events` and the account / end-user upserts (scope `ingest`)."""

from collections.abc import Callable

from django.conf import settings
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasIngestScope
from accounts.services import account_upsert, end_user_upsert
from config.api import database_unavailable_response, fast_json_response, fast_path_principal
from core.body import BodyError, read_body
from core.errors import DATABASE_UNAVAILABLE_ERRORS, error_body, error_payload
from core.ratelimit import api_key_rate_take
from core.serializers import error_response

from .feature_used import feature_used_ingest
from .serializers import (
    AccountInputSerializer,
    AccountOutputSerializer,
    EndUserInputSerializer,
    EndUserOutputSerializer,
    EventBatchSerializer,
    EventSerializer,
    IngestResultSerializer,
)
from .services import IngestResult, events_ingest
from .validation import parse_body

EVENTS_DESCRIPTION = """
Send one event object, a list of event objects, or `{"events": [...]}`.

**Limits** (settings): at most `UPTAKE_INGEST_MAX_EVENTS` (1000) events and `UPTAKE_INGEST_MAX_BYTES` (1 MiB)
per
request; both answer **413** (`too_many_events`, `body_too_large`) and store nothing. A body that is not JSON
(`invalid_json`), holds an object naming a key twice (`duplicate_key`) or is not an object / list of objects
(`invalid_body`) answers **400** and stores nothing.

**Compression**: `Content-Encoding: gzip` bodies are accepted; the byte limit applies to the decompressed
body (and to the compressed one), and inflating stops as soon as it passes the limit (**413**
`body_too_large`). A corrupt or truncated gzip stream is **400** `invalid_gzip`; another encoding is **415**
`unsupported_encoding`.

Otherwise **200** with `{"accepted", "duplicates", "ignored", "rejected": [{"index", "code", "message",
"field"}], "warnings": [{"index", "code", "field", "message"}]}`; valid events are stored (committed) even
when
others in the batch are rejected.

**Rejection codes**: `missing_field`, `invalid_type`, `invalid_value`, `invalid_id` (an account or user id
that is not printable text: control characters, NUL, lone surrogates), `too_old`, `in_future`,
`quantity_out_of_range`, `event_id_too_long`, `properties_too_large`, `hierarchy_conflict`,
`feature_cap_reached`, `module_cap_reached`, `product_cap_reached`.
**Warning codes**: `truncated` (an id over 64 characters was cut to 64), `unknown_field` (ignored).

`quantity` 0 is counted in `ignored` and stored nowhere; `2.0` is accepted as 2, `2.5` is `invalid_value`.
An `event_id` seen before in the workspace (or earlier in the same batch) counts in `duplicates`.

**429** with `Retry-After` over the per-key rate limit; **503** with `Retry-After` when the database is
unreachable (never a 2xx unless the events are committed).
"""


def _events_payload(request) -> list:
    """The request's events; BodyError (400/413/415) says what is wrong with the body as a whole."""
    return parse_body(
        read_body(request, max_bytes=settings.UPTAKE_INGEST_MAX_BYTES),
        max_bytes=settings.UPTAKE_INGEST_MAX_BYTES,
        max_events=settings.UPTAKE_INGEST_MAX_EVENTS,
    )


def _body_error(exc: BodyError) -> dict:
    return error_payload(error_body(exc.code, exc.message))


def _ingested(request, ingest: Callable[..., IngestResult]) -> Response:
    """The DRF answer of an events endpoint: the body's events through `ingest`, or the body's BodyError."""
    try:
        payload = _events_payload(request)
    except BodyError as exc:
        return Response(_body_error(exc), status=exc.status)
    result = ingest(workspace=request.user.workspace, payload=payload, now=timezone.now())
    return Response(result.as_dict(), status=status.HTTP_200_OK)


class EventsView(APIView):
    permission_classes = [HasIngestScope]

    @extend_schema(
        operation_id="events_ingest",
        summary="Ingest usage events",
        description=EVENTS_DESCRIPTION,
        request={"application/json": EventBatchSerializer},
        responses={
            200: IngestResultSerializer,
            400: error_response(
                "Not JSON, not events (`invalid_json`, `invalid_body`), an object naming a key twice "
                "(`duplicate_key`), or a corrupt gzip stream (`invalid_gzip`); nothing stored."
            ),
            413: error_response("Too many events, or the body (decompressed) too large; nothing stored."),
            415: error_response("A Content-Encoding other than gzip (`unsupported_encoding`)."),
        },
        examples=[
            OpenApiExample(
                "A batch",
                request_only=True,
                value={
                    "events": [
                        {
                            "account_id": "acct_42",
                            "user_id": "u_7",
                            "feature_id": "export.csv",
                            "quantity": 3,
                            "timestamp": "2026-11-18T11:59:00Z",
                            "event_id": "evt-0001",
                        }
                    ]
                },
            ),
            OpenApiExample(
                "Result",
                response_only=True,
                value={"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []},
            ),
        ],
        tags=["ingestion"],
    )
    def post(self, request):
        return _ingested(request, events_ingest)


_events_view = EventsView.as_view()
_EVENTS_ALLOW = "POST, OPTIONS"


@csrf_exempt
def events(request):
    """`POST /api/v1/events` (documented by EventsView). A valid key with the `ingest` scope within its rate
    limit is served here, below DRF (config.api fast paths); other requests (no or bad key, scope, rate limit,
    method, Accept) go to EventsView. Once the fast path has taken the request's rate-limit token it answers
    itself: a bad body with EventsView's 400/413, and the write with its result (or the 503 of a database
    outage, where nothing was committed; any other error is a 500 as in DRF)."""
    principal = fast_path_principal(request, method="POST", scope=HasIngestScope.scope)
    if principal is None or not api_key_rate_take(principal)[0]:
        return _events_view(request)
    try:
        payload = _events_payload(request)
    except BodyError as exc:
        return fast_json_response(_body_error(exc), allow=_EVENTS_ALLOW, status=exc.status)
    try:
        result = events_ingest(workspace=principal.workspace, payload=payload, now=timezone.now())
    except DATABASE_UNAVAILABLE_ERRORS:
        return database_unavailable_response(allow=_EVENTS_ALLOW)
    return fast_json_response(result.as_dict(), allow=_EVENTS_ALLOW)


# drf-spectacular documents views by their APIView class.
events.cls = EventsView
events.initkwargs = _events_view.initkwargs


class FeatureUsedView(APIView):
    permission_classes = [HasIngestScope]

    @extend_schema(
        operation_id="events_feature_used",
        summary="Ingest IngestLayer `feature.used` events",
        description='IngestLayer\'s `feature.used` event as its SDK emits it: `{"user_id", "feature", '
        '"count", "plan"}` (one object, a list, or `{"events": [...]}`). The account is the end user\'s '
        "(or `account_id` when given; `unknown_user` when no end user has that id); `count` is the quantity "
        "(default 1); `feature` a key or a display name; `plan` (text) becomes the account's plan label when the "
        "event is accepted. `event_id`, `timestamp` and `properties` are those of `POST /api/v1/events`, and so "
        "are the limits and the answer (rejections indexed by position).",
        request={"application/json": EventBatchSerializer},
        responses={
            200: IngestResultSerializer,
            400: error_response("Not JSON, or not events (`invalid_json`, `invalid_body`); nothing stored."),
            413: error_response("Too many events or body too large; nothing stored."),
        },
        examples=[
            OpenApiExample(
                "feature.used",
                request_only=True,
                value={"user_id": "u_7", "feature": "csv.export", "count": 1, "plan": "pro"},
            )
        ],
        tags=["ingestion"],
    )
    def post(self, request):
        return _ingested(request, feature_used_ingest)


class AccountView(APIView):
    permission_classes = [HasIngestScope]

    @extend_schema(
        operation_id="account_upsert",
        summary="Create or update an account",
        description="Idempotent upsert by the account's external id. Fields left out stay as they are; "
        "`null` "
        "clears a text field. `owner_email` must be the e-mail of a staff member of the workspace "
        "(`unknown_owner` otherwise); `status` is `active` or `churned`; `attributes` (an object) replaces "
        "the "
        "stored attributes. Unknown fields → 400 naming them. 201 when created, 200 when updated.",
        request=AccountInputSerializer,
        responses={200: AccountOutputSerializer, 201: AccountOutputSerializer},
        tags=["ingestion"],
    )
    def put(self, request, account_id: str):
        serializer = AccountInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account, created = account_upsert(
            workspace=request.user.workspace, external_id=account_id, **serializer.validated_data
        )
        return Response(
            AccountOutputSerializer(account).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class EndUserView(APIView):
    permission_classes = [HasIngestScope]

    @extend_schema(
        operation_id="end_user_upsert",
        summary="Create or update an end user of an account",
        description="Idempotent upsert of `email` and `attributes`; the account is registered if new. "
        "Unknown "
        "fields → 400 naming them. 201 when created, 200 when updated.",
        request=EndUserInputSerializer,
        responses={200: EndUserOutputSerializer, 201: EndUserOutputSerializer},
        tags=["ingestion"],
    )
    def put(self, request, account_id: str, user_id: str):
        serializer = EndUserInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, created = end_user_upsert(
            workspace=request.user.workspace,
            account_external_id=account_id,
            external_id=user_id,
            **serializer.validated_data,
        )
        return Response(
            EndUserOutputSerializer(user).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


__all__ = ["EventsView", "AccountView", "EndUserView", "EventSerializer"]
