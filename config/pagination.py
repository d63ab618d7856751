"""The API's pagination: DRF's limit/offset, with `limit` capped (a larger one answers at most
MAX_LIMIT rows; an unbounded one overflowed PostgreSQL's LIMIT)."""

from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = 1000
