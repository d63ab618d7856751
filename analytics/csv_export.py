"""CSV export of the dashboard lists: the same rows as the page (same filters and sort), streamed.

Every export goes through `csv_rows`, which neutralises formula injection (OWASP): a text cell that begins
with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet shows it as text
instead of running it. Numbers we computed (`int`, `float`, `Decimal`; negative ones included, e.g. a
change of -40.0 %) are written as numbers: they cannot carry a formula, and prefixing them would turn them
into text. The text "-5" (an account name, say) is neutralised like any other text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.http import StreamingHttpResponse


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One cell: None empty, numbers as they are, any other value as text neutralised against formulas."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_rows(*, columns: Sequence[tuple[str, str]], rows: Iterable[dict]) -> Iterable[list]:
    """Header (column titles) then one list per row, values in column order, each through csv_cell."""
    yield [csv_cell(title) for _, title in columns]
    for row in rows:
        yield [csv_cell(row.get(key)) for key, _ in columns]


def csv_response(*, filename: str, columns: Sequence[tuple[str, str]], rows: Iterable[dict]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in csv_rows(columns=columns, rows=rows)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
