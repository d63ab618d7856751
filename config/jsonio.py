"""JSON in and out of the API. Every JSON body a DRF view reads goes through JSONParser, which decodes
`Content-Encoding: gzip` as /api/v1/events does (core/body.py: one code path, the same limit on the decoded
size), refuses with a 400 an object that names a key twice (core.text.json_loads, as for every API body), and,
naming the place, what PostgreSQL could not store (NUL), what no response could echo (lone surrogates) and
nesting that would exhaust the stack; JSONRenderer cannot fail on text, so no answer turns into a 500 after its
writes committed. (A module of its own: DRF's settings import these classes while config.api is loading.)"""

import codecs
import io

from django.conf import settings
from rest_framework import exceptions, negotiation, parsers, renderers

from core.body import IDENTITY_ENCODINGS, BodyError, body_decode, content_encoding
from core.text import DuplicateKeyError, echo_json, json_loads, json_text_problem


class BodyRefused(exceptions.APIException):
    """A body refused whole by core.body: 413 `body_too_large`, 400 `invalid_gzip`, 415 `unsupported_encoding`."""

    def __init__(self, error: BodyError) -> None:
        super().__init__(error.message, code=error.code)
        self.status_code = error.status


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus gzip bodies (core.body) and a 400 for a key twice in one object, NUL, lone
    surrogates and nesting deeper than core.text.JSON_MAX_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        encoding = content_encoding(request) if request is not None else ""
        if encoding not in IDENTITY_ENCODINGS:
            # The decoded body is held to the limit a plain one has (DATA_UPLOAD_MAX_MEMORY_SIZE).
            try:
                raw = body_decode(stream.read(), encoding=encoding, max_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            except BodyError as exc:
                raise BodyRefused(exc) from None
            stream = io.BytesIO(raw)
        try:
            # DRF's parse, with core.text's decoder (a key twice in one object is refused).
            text = codecs.getreader(parsers.get_encoding(parser_context or {}))(stream).read()
            data = json_loads(text, finite=self.strict)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body nests too deeply.") from None
        except DuplicateKeyError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}.", code="duplicate_key") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        found = json_text_problem(data)
        if found is not None:
            path, problem = found
            raise exceptions.ValidationError({path: [f"'{path}' {problem.phrase}."]}, code=problem.code)
        return data


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, total on text: a lone surrogate anywhere in the data is rendered as U+FFFD."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return super().render(echo_json(data), accepted_media_type, renderer_context)


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, reading an empty `Accept` header as no header (any type), as the fast paths do
    (config.api.JSON_ACCEPTS): DRF found nothing acceptable in it and answered 406."""

    def get_accept_list(self, request):
        if not request.headers.get("accept", "").strip():
            return ["*/*"]
        return super().get_accept_list(request)
