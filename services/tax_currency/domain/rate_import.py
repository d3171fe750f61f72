"""Reading an exchange-rate CSV file (``rate_date,currency,rate,source``), every row checked. Pure.

The whole file is refused when any row is wrong, and every problem is named by row number (the header is
row 1) and field, so an operator fixes the file in one pass. Nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from shared.currencies import UnknownCurrency, currency
from shared.money import InvalidAmount, parse_amount

COLUMNS = ("rate_date", "currency", "rate", "source")
MAX_RATE_DIGITS = 30


@dataclass(frozen=True, slots=True)
class RateRow:
    row: int
    rate_date: date
    currency: str
    rate: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    message: str


def check_rate(text: str, *, code: str, base: str) -> tuple[Decimal | None, list[tuple[str, str]]]:
    """A rate and currency as an operator gives them; returns (rate, [(field, problem)])."""
    problems: list[tuple[str, str]] = []
    try:
        currency(code)
    except UnknownCurrency:
        problems.append(("currency", f"{code!r} is not an ISO 4217 currency code"))
    if code == base:
        problems.append(("currency", f"{code} is the tenant's base currency: its rate is 1 by definition"))
    try:
        rate = parse_amount(text)
    except InvalidAmount as exc:
        return None, [*problems, ("rate", str(exc))]
    if rate <= 0:
        problems.append(("rate", f"rate must be greater than 0 (units of {code} per 1 {base}), got {text}"))
    elif len(rate.as_tuple().digits) > MAX_RATE_DIGITS:
        problems.append(("rate", f"rate has more than {MAX_RATE_DIGITS} digits"))
    return rate, problems


def parse_rates_csv(text: str, *, base: str) -> tuple[list[RateRow], list[RowProblem]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)  # \r\n, \n or \r; bad quoting refused
    try:
        lines = [line for line in reader]
    except csv.Error as exc:  # e.g. a stray carriage return inside a field
        return [], [RowProblem(reader.line_num, "row", f"not readable as CSV: {exc}")]
    if not lines:
        return [], [RowProblem(1, "header", f"the file is empty; expected the header {','.join(COLUMNS)}")]
    header = tuple(h.strip() for h in lines[0])
    if header != COLUMNS:
        return [], [RowProblem(1, "header", f"expected the header {','.join(COLUMNS)}, got {','.join(header)}")]
    rows: list[RateRow] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, date], tuple[int, Decimal]] = {}
    for number, raw in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue  # blank lines are not rows
        if len(raw) != len(COLUMNS):
            problems.append(RowProblem(number, "row", f"expected {len(COLUMNS)} fields, got {len(raw)}"))
            continue
        day_text, code, rate_text, source = (cell.strip() for cell in raw)
        row_problems: list[tuple[str, str]] = []
        day: date | None = None
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            row_problems.append(("rate_date", f"{day_text!r} is not a date like 2026-01-31"))
        rate, rate_problems = check_rate(rate_text, code=code, base=base)
        row_problems += rate_problems
        if not source:
            row_problems.append(("source", "source is empty; say where the rate comes from (e.g. ECB)"))
        if day is not None and rate is not None and not row_problems:
            earlier = seen.get((code, day))
            if earlier is not None and earlier[1] != rate:
                row_problems.append(
                    ("rate", f"row {earlier[0]} gives {code} on {day} another rate ({earlier[1]}); one per date")
                )
            seen[(code, day)] = (number, rate)
        if row_problems or day is None or rate is None:
            problems += [RowProblem(number, f, m) for f, m in row_problems]
        else:
            rows.append(RateRow(number, day, code, rate, source))
    if not rows and not problems:
        problems.append(RowProblem(2, "row", "the file has a header but no rates"))
    return rows, problems
