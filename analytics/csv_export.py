"""CSV export of the dashboard lists: the same rows as the page (same filters and sort), streamed."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_rows(*, columns: Sequence[tuple[str, str]], rows: Iterable[dict]) -> Iterable[list]:
    """Header (column titles) then one list per row, values in column order; None as an empty cell."""
    yield [title for _, title in columns]
    for row in rows:
        yield ["" if row.get(key) is None else row.get(key) for key, _ in columns]


def csv_response(*, filename: str, columns: Sequence[tuple[str, str]], rows: Iterable[dict]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in csv_rows(columns=columns, rows=rows)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
