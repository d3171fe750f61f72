"""Exchange-rate CSV files: every row checked, every problem named by row and field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.tax_currency.domain.rate_import import RowProblem, parse_rates_csv

HEADER = "rate_date,currency,rate,source\n"


def test_reads_each_row_with_its_number() -> None:
    rows, problems = parse_rates_csv(HEADER + "2026-01-30,USD,1.25,ECB\n\n2026-01-30,JPY,190,BoE\n", base="GBP")

    assert problems == []
    assert [(r.row, r.rate_date, r.currency, r.rate, r.source) for r in rows] == [
        (2, date(2026, 1, 30), "USD", Decimal("1.25"), "ECB"),
        (4, date(2026, 1, 30), "JPY", Decimal(190), "BoE"),
    ]


def test_names_every_problem_by_row_and_field() -> None:
    text = HEADER + "2026-13-01,USD,1.25,ECB\n2026-01-30,usd,1e3,ECB\n2026-01-30,EUR,0,\n2026-01-30,GBP,1,ECB\n"

    _, problems = parse_rates_csv(text, base="GBP")

    assert {(p.row, p.field) for p in problems} == {
        (2, "rate_date"),
        (3, "currency"),
        (3, "rate"),
        (4, "rate"),
        (4, "source"),
        (5, "currency"),
    }


def test_two_rates_for_one_currency_and_date_in_one_file_are_refused() -> None:
    _, problems = parse_rates_csv(HEADER + "2026-01-30,USD,1.25,ECB\n2026-01-30,USD,1.26,ECB\n", base="GBP")

    assert [(p.row, p.field) for p in problems] == [(3, "rate")]


def test_a_repeated_identical_row_is_not_a_problem() -> None:
    rows, problems = parse_rates_csv(HEADER + "2026-01-30,USD,1.25,ECB\n2026-01-30,USD,1.25,ECB\n", base="GBP")

    assert (len(rows), problems) == (2, [])


def test_the_header_must_name_the_columns() -> None:
    _, problems = parse_rates_csv("date,code,rate,source\n2026-01-30,USD,1.25,ECB\n", base="GBP")

    assert problems[0].row == 1
    assert problems[0].field == "header"


def test_a_row_with_the_wrong_number_of_fields_is_named() -> None:
    _, problems = parse_rates_csv(HEADER + "2026-01-30,USD,1.25\n", base="GBP")

    assert problems == [RowProblem(2, "row", "expected 4 fields, got 3")]


def test_an_empty_file_is_refused() -> None:
    assert parse_rates_csv("", base="GBP")[1][0].field == "header"
    assert parse_rates_csv(HEADER, base="GBP")[1][0].message == "the file has a header but no rates"


def test_a_file_the_csv_reader_cannot_read_is_a_problem_not_a_crash() -> None:
    """The fuzz tier (issue 17) sent a body with a stray carriage return and a NUL-free binary tail: a 500."""
    assert parse_rates_csv('rate_date,currency,rate,source\n"2026-01-05\n', base="GBP") == (
        [],
        [RowProblem(2, "row", "not readable as CSV: unexpected end of data")],
    )
    rows, problems = parse_rates_csv("\x10>\r\xba0\xfc", base="GBP")
    assert rows == []
    assert [p.field for p in problems] == ["header"]


def test_carriage_return_line_endings_are_read() -> None:
    rows, problems = parse_rates_csv("rate_date,currency,rate,source\r\n2026-01-05,USD,1.25,ecb\r\n", base="GBP")
    assert problems == []
    assert [(r.currency, r.rate) for r in rows] == [("USD", Decimal("1.25"))]
