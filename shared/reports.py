"""How every report answers: JSON by default, or ``?format=csv`` (text/csv, a header row and the same columns).

Reports are answered by the service that owns the data (see docs/architecture.md "Reports"); this module
only shapes the answer, so every report's CSV has the same conventions: the columns are the JSON row's keys
in order, decimals as their wire strings, ``null`` as an empty cell, nested values as compact JSON, and a
text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from fastapi import Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(text: str) -> str:
    """A text cell a spreadsheet would run as a formula (a client named ``=HYPERLINK(…)``) gets a leading
    apostrophe; numbers, negative amounts included, are left as they are."""
    if not text.startswith(_FORMULA_START):
        return text
    try:
        Decimal(text)
    except ArithmeticError:
        return "'" + text
    return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _inert(value)
    if isinstance(value, int | Decimal | UUID | date | datetime):
        return value.isoformat() if isinstance(value, date | datetime) else str(value)
    return json.dumps(jsonable_encoder(value, custom_encoder={Decimal: str}), separators=(",", ":"), sort_keys=True)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header row of ``columns`` (a row's missing keys are empty cells)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def respond(
    body: Mapping[str, Any],
    *,
    fmt: Format,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    filename: str,
) -> Response:
    """The report ``body`` as JSON, or its ``rows`` as CSV (``columns`` in order) when ``fmt`` is csv."""
    if fmt is Format.CSV:
        return Response(
            to_csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    return JSONResponse(jsonable_encoder(body, custom_encoder={Decimal: str}))
