"""Properties of tax and conversion arithmetic (hypothesis), across 0-, 2- and 3-decimal currencies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.tax_currency.domain.fx import ExchangeRate, conversion
from services.tax_currency.domain.taxes import LineInput, Region, TaxRate, quote_taxes, tax_exclusive, tax_inclusive
from shared.contracts.tax import QuotedLine, QuotedTax, TaxQuoted
from shared.currencies import currency
from shared.money import round_half_up

CURRENCIES = ["JPY", "GBP", "BHD"]  # 0, 2 and 3 minor units
RECORDED = datetime(2025, 1, 1, tzinfo=UTC)


def unit(code: str) -> Decimal:
    return Decimal(1).scaleb(-currency(code).minor_units)


def amounts(code: str, *, min_units: int = 0, max_units: int = 10**9) -> st.SearchStrategy[Decimal]:
    return st.integers(min_units, max_units).map(lambda n: Decimal(n) * unit(code))


percentages = st.decimals(min_value=0, max_value=30, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tax_rows(draw: st.DrawFn) -> list[TaxRate]:
    count = draw(st.integers(1, 3))
    return [
        TaxRate(
            tax_rate_id=uuid.uuid4(),
            country="GB",
            subdivision=None,
            tax_category=None,
            name=f"Tax {i}",
            rate=draw(percentages),
            compound=i > 0 and draw(st.booleans()),
            apply_order=i,
            valid_from=date(2020, 1, 1),
            valid_to=None,
            withdrawn=False,
            recorded_at=RECORDED,
        )
        for i in range(count)
    ]


@settings(max_examples=300)
@given(data=st.data(), code=st.sampled_from(CURRENCIES), rows=tax_rows())
def test_line_taxes_sum_to_the_invoice_tax(data: st.DataObject, code: str, rows: list[TaxRate]) -> None:
    nets = data.draw(st.lists(amounts(code), min_size=1, max_size=8))
    inclusive = data.draw(st.booleans())
    lines = [LineInput(uuid.uuid4(), n, None) for n in nets]

    result = quote_taxes(
        lines=lines,
        rates=rows,
        exemptions=[],
        region=Region("GB", None),
        company_id=None,
        day=date(2026, 1, 1),
        code=code,
        inclusive=inclusive,
    )

    assert result.tax_total == sum((t.amount for line in result.lines for t in line.taxes), Decimal(0))
    for line in result.lines:
        assert all(round_half_up(t.amount, currency=code) == t.amount for t in line.taxes)
    # the wire contract checks the same sums, so what is published reconciles
    TaxQuoted(
        request_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        invoice_id=uuid.uuid4(),
        currency=code,
        tax_inclusive=inclusive,
        lines=[
            QuotedLine(
                line_id=line.line_id,
                net_amount=line.net_amount,
                taxes=[
                    QuotedTax(
                        name=t.name,
                        rate=t.rate,
                        amount=t.amount,
                        compound=t.compound,
                        exemption_reason=None,
                        tax_rate_id=t.tax_rate_id,
                    )
                    for t in line.taxes
                ],
                tax_amount=line.tax_amount,
                total=line.total,
            )
            for line in result.lines
        ],
        tax_total=result.tax_total,
    )


@settings(max_examples=500)
@given(data=st.data(), code=st.sampled_from(CURRENCIES), rows=tax_rows())
def test_inclusive_and_exclusive_forms_of_one_net_agree_within_one_minor_unit_per_tax(
    data: st.DataObject, code: str, rows: list[TaxRate]
) -> None:
    net = data.draw(amounts(code))
    exclusive = tax_exclusive(net, rows, code=code, exempt=None)
    gross = exclusive.total

    inclusive = tax_inclusive(gross, rows, code=code, exempt=None)

    assert inclusive.net_amount + inclusive.tax_amount == gross  # split exactly, not taxed again
    for inc, exc in zip(inclusive.taxes, exclusive.taxes, strict=True):
        assert abs(inc.amount - exc.amount) <= unit(code), (inc, exc)
    assert abs(inclusive.net_amount - net) <= len(rows) * unit(code)


def fx_row(code: str, rate: Decimal, base: str = "EUR") -> ExchangeRate:
    return ExchangeRate(uuid.uuid4(), code, base, rate, date(2026, 1, 1), "test", RECORDED)


rates = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(30000), places=6, allow_nan=False).filter(
    lambda r: r > 0
)


@settings(max_examples=500)
@given(
    data=st.data(),
    pair=st.permutations(["JPY", "GBP", "BHD", "EUR"]).map(lambda p: (p[0], p[1])),
    rate_a=rates,
    rate_b=rates,
)
def test_converting_there_and_back_stays_within_a_converted_back_minor_unit_plus_one(
    data: st.DataObject, pair: tuple[str, str], rate_a: Decimal, rate_b: Decimal
) -> None:
    a, b = pair
    rows = [fx_row(c, r) for c, r in ((a, rate_a), (b, rate_b)) if c != "EUR"]
    day = date(2026, 2, 1)
    there = conversion(from_currency=a, to_currency=b, base="EUR", rows=rows, day=day)
    back = conversion(from_currency=b, to_currency=a, base="EUR", rows=rows, day=day)
    amount = data.draw(amounts(a, max_units=10**10))

    # invoicing rounds at the line's net: the named boundary after conversion
    intermediate = round_half_up(there.apply(amount), currency=b)
    returned = round_half_up(back.apply(intermediate), currency=a)

    assert abs(returned - amount) <= unit(b) * back.rate + unit(a)


@settings(max_examples=300)
@given(
    change=st.dates(min_value=date(2024, 1, 2), max_value=date(2027, 12, 31)),
    offset=st.integers(-60, 60),
    code=st.sampled_from(CURRENCIES),
)
def test_a_rate_that_changes_mid_period_applies_by_date(change: date, offset: int, code: str) -> None:
    old = TaxRate(
        uuid.uuid4(), "GB", None, None, "VAT", Decimal("17.5"), False, 0, date(2020, 1, 1), None, False, RECORDED
    )
    new = TaxRate(uuid.uuid4(), "GB", None, None, "VAT", Decimal(20), False, 0, change, None, False, RECORDED)
    day = change + timedelta(days=offset)

    result = quote_taxes(
        lines=[LineInput(uuid.uuid4(), Decimal(1000), None)],
        rates=[new, old],
        exemptions=[],
        region=Region("GB", None),
        company_id=None,
        day=day,
        code=code,
        inclusive=False,
    )

    expected = new if day >= change else old
    assert [t.tax_rate_id for t in result.lines[0].taxes] == [expected.tax_rate_id]
    # 1000 x 20 % = 200; 1000 x 17.5 % = 175 (whole amounts in every currency)
    assert result.tax_total == (Decimal(200) if day >= change else Decimal(175))


@settings(max_examples=300)
@given(
    change=st.dates(min_value=date(2024, 1, 2), max_value=date(2027, 12, 31)),
    offset=st.integers(-60, 60),
)
def test_an_exchange_rate_that_changes_mid_period_applies_by_date(change: date, offset: int) -> None:
    old = ExchangeRate(uuid.uuid4(), "USD", "GBP", Decimal("1.25"), date(2020, 1, 1), "ECB", RECORDED)
    new = ExchangeRate(uuid.uuid4(), "USD", "GBP", Decimal("1.30"), change, "ECB", RECORDED)
    day = change + timedelta(days=offset)

    quoted = conversion(from_currency="GBP", to_currency="USD", base="GBP", rows=[new, old], day=day)

    assert quoted.rows == ((new,) if day >= change else (old,))
