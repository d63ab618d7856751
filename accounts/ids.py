"""Customer account and end-user external ids: free text as the customer has them (`org/1`, `acct:42`,
`a b`, `jane@example.com`), printable (no control characters), at most 64 characters."""

from __future__ import annotations

from urllib.parse import quote, unquote

from django.urls import reverse

from core.errors import DomainError
from core.text import text_problem


def external_id_problem(value: str, *, field: str) -> str | None:
    """Why `value` is no external id (it is not printable text), in a sentence naming the field; None if it is."""
    if problem := text_problem(value, controls=True):
        return f"'{field}' {problem.phrase}; ids are printable text."
    return None


def external_id_check(value: str, *, field: str) -> None:
    """Raise DomainError (`invalid_id`, naming the field) when `value` is not printable text."""
    if message := external_id_problem(value, field=field):
        raise DomainError(message, code="invalid_id", field=field)


class ExternalIdConverter:
    """`<external_id:...>` in URL patterns: one path segment in which config.http.RequestTextMiddleware has
    written `%` as `%25` and a `/` of the id as `%2F` (to_python decodes them). Reversing gives the id
    percent-encoded, `org/1` as `org%2F1`."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return unquote(value)

    def to_url(self, value: str) -> str:
        # Django quotes the whole URL it builds ("%" too) and keeps "/": an id with a "/" cannot be encoded
        # here, so it does not match and links to ids go through external_id_reverse.
        return value


def external_id_reverse(viewname: str, **ids: str) -> str:
    """reverse() for routes with external ids: each id percent-encoded whole (`org/1` → `org%2F1`)."""
    marks = {name: f"~{index}~" for index, name in enumerate(ids)}
    url = reverse(viewname, kwargs=marks)
    for name, mark in marks.items():
        url = url.replace(mark, quote(ids[name], safe=""), 1)
    return url
