"""The API's pagination: DRF's limit/offset, with `limit` capped (a larger one answers at most MAX_LIMIT rows; an
unbounded one overflowed PostgreSQL's LIMIT) and both parameters strict: DRF reads `limit=abc`, `limit=-1`,
`offset=-5` or `offset=1e3` as if they were absent and answers another page than the one asked for; here they
are a 400 naming the parameter."""

import re

from rest_framework import exceptions, pagination

from core.text import echo

_WHOLE = re.compile(r"[0-9]+", re.ASCII)
_HUGE = 10**18


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = 1000

    def get_limit(self, request):
        limit = _whole(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return _whole(request, self.offset_query_param, minimum=0) or 0


def _whole(request, name: str, *, minimum: int) -> int | None:
    """The query parameter `name` as a whole number ≥ `minimum`; None when absent or empty."""
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    # Past 18 digits a number is only "more than any row count" (and int() refuses past 4,300 digits).
    value = (int(text) if len(text) <= 18 else _HUGE) if _WHOLE.fullmatch(text) else None
    if value is None or value < minimum:
        raise exceptions.ValidationError(
            {name: [f"'{name}' must be a whole number from {minimum}, not '{echo(text, limit=40)}'."]}, code="invalid"
        )
    return value
