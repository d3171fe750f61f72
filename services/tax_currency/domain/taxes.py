"""Which tax rates apply to an invoice line, and the exact taxes on it. Pure: no I/O, no clock.

The rules (worked examples in the service README):

* **A series** is every row with the same jurisdiction level (country, subdivision or none), tax category
  (or none) and tax name. Rows are never edited: a change in law is a new row of the series from its
  ``valid_from``. The row **in force** on a day is the series' row with the latest ``valid_from`` on or
  before that day (a correction entered later for the same ``valid_from`` wins: latest ``recorded_at``);
  it stops being in force on its own ``valid_to`` (exclusive) if it has one. A ``withdrawn`` row is in
  force like any other but means "this tax no longer applies here".
* **Resolution per tax name, most specific first:** for region ``US-NY`` and category ``c`` the levels are
  (NY, c) → (NY, any category) → (US, c) → (US, any category). The first level with a row in force wins;
  a withdrawn row there means the tax does not apply (no fallback). Different names add up, so a country
  tax and a state tax both apply; the same name at a more specific level replaces the general one.
* **Missing vs untaxed:** a line for which no tax name resolves to a row in force (nothing configured, or
  every row ended by its ``valid_to`` with no successor) is *missing* — an explicit error, never a silent
  zero. A line is legitimately untaxed only when what resolves is withdrawn, or when a 0 % rate applies
  (printed as a 0 % tax), or when the client is exempt.
* **Order and compounding:** taxes apply in ascending ``apply_order``, then name. A compound tax is computed
  on the net plus every tax before it in that order (the rounded amounts, as printed).
* **Rounding:** each tax amount is rounded half-up to the currency's minor units, per line.
* **Inclusive:** a gross price already contains its taxes and is split, not taxed again: the exact share of
  each tax in the gross is rounded half-up, and the net is what remains, so net + taxes == gross exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from uuid import UUID

from shared.contracts.tax import FailureReason
from shared.currencies import UnknownCurrency, currency
from shared.money import round_half_up

_REGION = re.compile(r"([A-Z]{2})(?:-([A-Z0-9]{1,3}))?")
HUNDRED = Decimal(100)


class QuoteError(Exception):
    """A quote cannot be given: the machine reason and a message naming what is missing."""

    def __init__(self, reason: FailureReason, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class Region:
    country: str
    subdivision: str | None

    @classmethod
    def parse(cls, text: str) -> Region:
        """ISO 3166: ``GB`` (country) or ``US-NY`` (country and subdivision)."""
        match = _REGION.fullmatch(text)
        if match is None:
            raise ValueError(f"region {text!r} is not ISO 3166 like 'GB' or 'US-NY'")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return self.country if self.subdivision is None else f"{self.country}-{self.subdivision}"


@dataclass(frozen=True, slots=True)
class TaxRate:
    """One append-only row of a series (see the module docstring)."""

    tax_rate_id: UUID
    country: str
    subdivision: str | None
    tax_category: str | None
    name: str
    rate: Decimal  # percent, 0..100
    compound: bool
    apply_order: int
    valid_from: date
    valid_to: date | None  # exclusive
    withdrawn: bool
    recorded_at: datetime

    @property
    def series(self) -> tuple[str, str | None, str | None, str]:
        return (self.country, self.subdivision, self.tax_category, self.name)


@dataclass(frozen=True, slots=True)
class Exemption:
    """A client exempt from tax, on every category (``tax_category`` None) or one category."""

    exemption_id: UUID
    company_id: UUID
    tax_category: str | None
    reason: str
    valid_from: date
    valid_to: date | None  # exclusive

    def covers(self, company_id: UUID | None, category: str | None, day: date) -> bool:
        return (
            company_id == self.company_id
            and (self.tax_category is None or self.tax_category == category)
            and self.valid_from <= day
            and (self.valid_to is None or day < self.valid_to)
        )


@dataclass(frozen=True, slots=True)
class LineInput:
    line_id: UUID
    amount: Decimal  # the rounded net; the gross when the invoice is tax-inclusive
    tax_category: str | None


@dataclass(frozen=True, slots=True)
class AppliedTax:
    name: str
    rate: Decimal
    amount: Decimal
    compound: bool
    exemption_reason: str | None
    tax_rate_id: UUID


@dataclass(frozen=True, slots=True)
class TaxedLine:
    line_id: UUID
    net_amount: Decimal
    taxes: tuple[AppliedTax, ...]

    @property
    def tax_amount(self) -> Decimal:
        return sum((t.amount for t in self.taxes), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.net_amount + self.tax_amount


@dataclass(frozen=True, slots=True)
class TaxQuote:
    currency: str
    tax_inclusive: bool
    lines: tuple[TaxedLine, ...]

    @property
    def tax_total(self) -> Decimal:
        """Invoice tax is the sum of its lines' (already rounded) taxes: never rounded again."""
        return sum((line.tax_amount for line in self.lines), Decimal(0))

    @property
    def rate_ids(self) -> list[UUID]:
        return sorted({t.tax_rate_id for line in self.lines for t in line.taxes}, key=str)


def in_force(series: Iterable[TaxRate], day: date) -> TaxRate | None:
    """The series' row in force on ``day`` (withdrawn rows included), or None."""
    started = [r for r in series if r.valid_from <= day]
    if not started:
        return None
    latest = max(started, key=lambda r: (r.valid_from, r.recorded_at, str(r.tax_rate_id)))
    if latest.valid_to is not None and day >= latest.valid_to:
        return None
    return latest


def resolve(rates: Sequence[TaxRate], *, region: Region, category: str | None, day: date) -> list[TaxRate] | None:
    """The rows that tax a line of ``category`` for a client in ``region`` on ``day``, in application order;
    None when nothing resolves at all (missing), [] when what resolves is withdrawn (untaxed)."""
    levels: list[tuple[str | None, str | None]] = []
    for sub in ([region.subdivision] if region.subdivision else []) + [None]:
        if category is not None:
            levels.append((sub, category))
        levels.append((sub, None))
    by_series: dict[tuple[str, str | None, str | None, str], list[TaxRate]] = {}
    for r in rates:
        if r.country == region.country:
            by_series.setdefault(r.series, []).append(r)
    resolved_any = False
    chosen: list[TaxRate] = []
    for name in sorted({s[3] for s in by_series}):
        for sub, cat in levels:
            row = in_force(by_series.get((region.country, sub, cat, name), ()), day)
            if row is None:
                continue
            resolved_any = True
            if not row.withdrawn:
                chosen.append(row)
            break
    if not resolved_any:
        return None
    return sorted(chosen, key=lambda r: (r.apply_order, r.name, str(r.tax_rate_id)))


def exemption_for(
    exemptions: Iterable[Exemption], *, company_id: UUID | None, category: str | None, day: date
) -> Exemption | None:
    """A category-specific exemption wins over a whole-client one; then the latest valid_from, then id."""
    covering = [e for e in exemptions if e.covers(company_id, category, day)]
    if not covering:
        return None
    return max(covering, key=lambda e: (e.tax_category is not None, e.valid_from, str(e.exemption_id)))


def minor_units_of(code: str) -> int:
    try:
        return currency(code).minor_units
    except UnknownCurrency:
        raise QuoteError(
            FailureReason.UNKNOWN_CURRENCY, f"currency {code!r} is not an ISO 4217 code", field="currency"
        ) from None


def _round_fraction(value: Fraction, code: str) -> Decimal:
    """Named rounding boundary (inclusive split): an exact share rounded HALF-UP to the currency's minor
    units; ties away from zero, like shared.money.round_half_up."""
    scale = 10 ** currency(code).minor_units
    units = abs(value) * scale
    rounded = int(units + Fraction(1, 2))  # floor(x + 1/2) on |x|: half-up
    sign = -1 if value < 0 else 1
    return round_half_up(Decimal(sign * rounded) / Decimal(scale), currency=code)


def tax_exclusive(net: Decimal, rows: Sequence[TaxRate], *, code: str, exempt: Exemption | None) -> TaxedLine:
    """Taxes on a rounded net: each rounded half-up per line; a compound tax on net + earlier taxes."""
    applied: list[AppliedTax] = []
    for row in rows:
        if exempt is not None:
            applied.append(_exempt(row, exempt, code))
            continue
        base = net + sum((t.amount for t in applied), Decimal(0)) if row.compound else net
        # Named rounding boundary: one tax on one line, HALF-UP to the currency's minor units.
        amount = round_half_up(base * row.rate / HUNDRED, currency=code)
        applied.append(AppliedTax(row.name, row.rate, amount, row.compound, None, row.tax_rate_id))
    return TaxedLine(line_id=UUID(int=0), net_amount=net, taxes=tuple(applied))


def tax_inclusive(gross: Decimal, rows: Sequence[TaxRate], *, code: str, exempt: Exemption | None) -> TaxedLine:
    """Split a gross that contains its taxes: tax_i = gross x f_i / F rounded half-up, net = gross - taxes,
    where f_i is tax i's share of one unit of net (r_i, or r_i x (1 + earlier shares) when compound) and
    F = 1 + sum(f_i). So net + taxes == gross exactly."""
    if exempt is not None:
        return TaxedLine(UUID(int=0), gross, tuple(_exempt(r, exempt, code) for r in rows))
    shares: list[Fraction] = []
    for row in rows:
        r = Fraction(row.rate) / 100
        shares.append((1 + sum(shares, Fraction(0))) * r if row.compound else r)
    factor = 1 + sum(shares, Fraction(0))
    applied = [
        AppliedTax(
            row.name, row.rate, _round_fraction(Fraction(gross) * f / factor, code), row.compound, None, row.tax_rate_id
        )
        for row, f in zip(rows, shares, strict=True)
    ]
    net = gross - sum((t.amount for t in applied), Decimal(0))
    return TaxedLine(UUID(int=0), net, tuple(applied))


def _exempt(row: TaxRate, exempt: Exemption, code: str) -> AppliedTax:
    zero = round_half_up(Decimal(0), currency=code)  # "0.00" in GBP, "0" in JPY
    return AppliedTax(row.name, Decimal(0), zero, row.compound, exempt.reason, row.tax_rate_id)


def quote_taxes(
    *,
    lines: Sequence[LineInput],
    rates: Sequence[TaxRate],
    exemptions: Sequence[Exemption],
    region: Region,
    company_id: UUID | None,
    day: date,
    code: str,
    inclusive: bool,
) -> TaxQuote:
    """Every line's taxes; raises QuoteError(missing_tax_rate) naming the region, category and date of the
    first line no rate resolves for."""
    minor_units_of(code)
    taxed: list[TaxedLine] = []
    for i, line in enumerate(lines):
        if round_half_up(line.amount, currency=code) != line.amount:
            raise QuoteError(
                FailureReason.INVALID_REQUEST,
                f"line {line.line_id}: amount {line.amount} has more decimals than {code} allows; "
                "send the rounded net (or gross)",
                field=f"lines.{i}.amount",
            )
        rows = resolve(rates, region=region, category=line.tax_category, day=day)
        if rows is None:
            category = "no tax category" if line.tax_category is None else f"tax category {line.tax_category!r}"
            raise QuoteError(
                FailureReason.MISSING_TAX_RATE,
                f"no tax rate in force for region {region} and {category} on {day.isoformat()}",
                field=f"lines.{i}.tax_category",
            )
        exempt = exemption_for(exemptions, company_id=company_id, category=line.tax_category, day=day)
        compute = tax_inclusive if inclusive else tax_exclusive
        result = compute(line.amount, rows, code=code, exempt=exempt)
        taxed.append(TaxedLine(line.line_id, result.net_amount, result.taxes))
    return TaxQuote(currency=code, tax_inclusive=inclusive, lines=tuple(taxed))
