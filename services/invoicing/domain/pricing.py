"""The order on an invoice line, pure (no I/O, no clock): docs/architecture.md "The order on an invoice line".

1. **Lines** group a period's charges (kind, service, plan, unit price, unit, description, currency, and the
   discount schedule of their service days: charges under different discount windows never share a line); a
   line's amount is the sum of its charges at full precision, in the charges' currency.
2. **Converted** to the invoice currency with tax-currency's ``conversion.quoted`` (exact, not rounded):
   ``amount x rate`` and ``unit_price x rate``; a prorated fixed piece by the remainder rule in the invoice
   currency (`proration.piece`).
3. **Discounted** (see `apply_discounts`), still exact.
4. **Net rounded** half-up to the currency's minor units: the named boundary. ``amount`` is the converted
   amount rounded the same way and ``discount_amount = amount - net_amount``, so every line reconciles.
5. **Taxed** by tax-currency (``tax.quoted``) on the rounded net, each tax rounded per line there.

Discounts (catalog's `applicable_discounts` decides which apply on each **service day** of a line's charges:
a record's day, a period-priced charge's covered span, a fixed fee's run; ``f_d`` is the share of the line's
service days on which discount ``d`` applies, weighted by the charges' amounts — docs/billing-rules.md §7):

- a **service** discount applies to that service's lines, a **plan** discount (or a client's discount on a
  plan) to the lines that plan priced, a **client-wide** discount to the whole invoice (its lines);
- a client-specific discount overrides the plan's and service's defaults (catalog's precedence);
- only approved, active discounts within their dates count (``discount_in_effect``);
- **percentages** first, each on the line's converted amount x ``f_d`` (summed, at most 100 %); a client-wide
  percentage is computed once on its lines' total (each x ``f_d``), rounded half-up, and allocated across
  them by largest remainder; plan and service percentages are exact per line;
- then **fixed amounts**, once per discount (not per line, never prorated), over the lines with ``f_d > 0``:
  at most what remains of them (rounded down to minor units), allocated by largest remainder of what
  remains on each;
- a fixed amount must be in the invoice currency: otherwise the invoice is held (`CannotInvoice`), never
  converted silently;
- lines with a zero or negative amount (corrections) and billing adjustments take no discount.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_DOWN, Context, Decimal
from fractions import Fraction
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from services.invoicing.domain.proration import piece
from shared.contracts.catalog import DiscountState, DiscountType, applicable_discounts
from shared.contracts.rating import ChargeCreated
from shared.contracts.tax import AmountToConvert, ConversionQuoted, LineToTax
from shared.currencies import currency as currency_info
from shared.money import allocate_largest_remainder, round_half_up

HUNDRED = Decimal(100)


class CannotInvoice(Exception):
    """The invoice must be held: the reason says why."""


class ServiceSpan(BaseModel):
    """Service days ``[start, end)`` of some of a line's charges and their amount (line currency, exact)."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    amount: Decimal


class ProratedPiece(BaseModel):
    """A prorated fixed charge of the line: days ``[first, end)`` (offsets) of a ``days``-day cycle whose whole
    price is ``price``; ``amount`` is rating's exact share, replaced by the remainder rule once converted."""

    model_config = ConfigDict(frozen=True)

    price: Decimal
    first: int
    end: int
    days: int
    amount: Decimal


class DraftLine(BaseModel):
    """A line before conversion: its charges summed at full precision in their own currency."""

    model_config = ConfigDict(frozen=True)

    line_id: UUID
    kind: str
    service_id: UUID | None  # None for a billing adjustment
    service_ref: str | None
    plan_id: UUID | None
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    currency: str
    first_day: date
    charge_ids: list[UUID]
    source_records: list[UUID]
    spans: list[ServiceSpan] = []  # empty on drafts stored before service days: judged on first_day
    prorated: list[ProratedPiece] = []


class AppliedDiscount(BaseModel):
    model_config = ConfigDict(frozen=True)

    discount_id: UUID
    name: str
    scope: str  # line, plan or invoice
    amount: Decimal  # exact, in the invoice currency


class PricedLine(BaseModel):
    """A line converted, discounted and rounded: ready to be taxed."""

    model_config = ConfigDict(frozen=True)

    line: DraftLine
    unit_price: Decimal  # invoice currency, exact
    amount_exact: Decimal  # invoice currency, exact
    discount_exact: Decimal
    discounts: list[AppliedDiscount]
    amount: Decimal  # rounded half-up
    net_amount: Decimal  # rounded half-up (the named boundary)

    @property
    def discount_amount(self) -> Decimal:
        return self.amount - self.net_amount


def service_days(c: ChargeCreated) -> tuple[date, date]:
    """The days a charge is for (docs/billing-rules.md §7): a prorated fee's run, else its service period, else
    its billing period (charges sent before service days were set on every charge)."""
    if c.proration is not None:
        return c.proration.first_day, c.proration.end_day
    if c.service_period_start is not None and c.service_period_end is not None:
        return c.service_period_start, c.service_period_end
    return c.period_start, c.period_end


Schedule = tuple[tuple[date, date, tuple[str, ...]], ...]
"""Runs of a charge's days with the discounts applying on them (one run when that never changes)"""


class _Schedules:
    """Which discounts apply on each day, per (plan, service): computed once per day and line kind."""

    def __init__(self, discounts: Iterable[DiscountState], company_id: UUID | None) -> None:
        self._pool = list(discounts)
        self._company_id = company_id
        self._days: dict[tuple[UUID | None, UUID | None, date], tuple[str, ...]] = {}

    def on(self, plan_id: UUID | None, service_id: UUID | None, day: date) -> tuple[str, ...]:
        key = (plan_id, service_id, day)
        if key not in self._days:
            if self._company_id is None or not self._pool:
                self._days[key] = ()
            else:
                chosen = applicable_discounts(
                    self._pool, company_id=self._company_id, plan_id=plan_id, service_id=service_id, day=day
                )
                self._days[key] = tuple(sorted(str(d.discount_id) for d in chosen))
        return self._days[key]

    def schedule(self, c: ChargeCreated) -> Schedule:
        start, end = service_days(c)
        runs: list[tuple[date, date, tuple[str, ...]]] = []
        day = start
        while day < end:
            ids = self.on(c.price_rule.plan_id, c.service_id, day)
            if runs and runs[-1][2] == ids:
                runs[-1] = (runs[-1][0], day + timedelta(days=1), ids)
            else:
                runs.append((day, day + timedelta(days=1), ids))
            day += timedelta(days=1)
        if len(runs) == 1:
            return ((date.min, date.min, runs[0][2]),)  # the same discounts throughout: whatever the days
        return tuple(runs)


def _group_key(c: ChargeCreated, schedule: Schedule) -> tuple[object, ...]:
    plan = str(c.price_rule.plan_id) if c.price_rule.plan_id else ""
    return (c.kind, c.service_ref, plan, c.unit_price, c.unit, c.description, c.currency, schedule)


def draft_lines(
    invoice_id: UUID,
    charges: Iterable[ChargeCreated],
    *,
    discounts: Iterable[DiscountState] = (),
    company_id: UUID | None = None,
) -> list[DraftLine]:
    """The period's charges grouped into lines; charges whose service days fall under different discount
    windows (of ``discounts``, the client's) are kept on different lines."""
    schedules = _Schedules(discounts, company_id)
    grouped: dict[tuple[object, ...], list[ChargeCreated]] = defaultdict(list)
    for c in sorted(charges, key=lambda c: (c.service_ref, str(c.charge_id))):
        grouped[_group_key(c, schedules.schedule(c))].append(c)
    lines = []
    for key, group in grouped.items():
        first = group[0]
        spans: dict[tuple[date, date], Decimal] = defaultdict(Decimal)
        for c in group:
            spans[service_days(c)] += c.amount
        lines.append(
            DraftLine(
                line_id=uuid.uuid5(invoice_id, json.dumps(key[:7] + _schedule_key(key[7]), default=str)),
                kind=first.kind,
                service_id=first.service_id,
                service_ref=first.service_ref,
                plan_id=first.price_rule.plan_id,
                description=first.description + (" (late usage)" if any(c.late for c in group) else ""),
                quantity=_sum(c.quantity for c in group),
                unit=first.unit,
                unit_price=first.unit_price,
                amount=_sum(c.amount for c in group),
                currency=first.currency,
                first_day=min(service_days(c)[0] for c in group),
                charge_ids=sorted((c.charge_id for c in group), key=str),
                source_records=sorted({r for c in group for r in c.source_records}, key=str),
                spans=[ServiceSpan(start=a, end=b, amount=v) for (a, b), v in sorted(spans.items())],
                prorated=[p for c in group for p in _prorated_pieces(c)],
            )
        )
    return lines


def _prorated_pieces(c: ChargeCreated) -> list[ProratedPiece]:
    """The prorated shares inside a charge: a prorated fee itself, or those a settlement adjustment carries."""
    start = c.service_period_start
    if start is None:
        return []
    shares = [c.proration] if c.proration is not None else c.prorated_pieces
    return [
        ProratedPiece(
            price=p.full_price,
            first=(p.first_day - start).days,
            end=(p.end_day - start).days,
            days=p.cycle_days,
            amount=_EXACT.divide(p.full_price * p.days, Decimal(p.cycle_days)),  # as rating charged it
        )
        for p in shares
    ]


def _schedule_key(schedule: object) -> tuple[object, ...]:
    """The part of a line's id that tells its discount windows apart: nothing when no discount ever applies,
    so a line's id is what it was before discount windows split lines."""
    runs = schedule if isinstance(schedule, tuple) else ()
    if len(runs) == 1 and not runs[0][2]:
        return ()
    return (runs,)


def adjustment_line(
    invoice_id: UUID, *, adjustment_id: UUID, amount: Decimal, currency: str, description: str, day: date
) -> DraftLine:
    """An approved billing adjustment as a line of the client's next invoice (taxed like any line)."""
    return DraftLine(
        line_id=uuid.uuid5(invoice_id, f"adjustment:{adjustment_id}"),
        kind="adjustment",
        service_id=None,
        service_ref=None,
        plan_id=None,
        description=description,
        quantity=Decimal(1),
        unit="adjustment",
        unit_price=amount,
        amount=amount,
        currency=currency,
        first_day=day,
        charge_ids=[],
        source_records=[],
    )


def foreign_currencies(lines: Iterable[DraftLine], currency: str) -> list[str]:
    """The charge currencies that need a conversion to ``currency``, sorted."""
    return sorted({line.currency for line in lines} - {currency})


def amounts_to_convert(lines: Iterable[DraftLine], from_currency: str) -> list[AmountToConvert]:
    return [AmountToConvert(line_id=x.line_id, amount=x.amount) for x in lines if x.currency == from_currency]


def converted(
    lines: Sequence[DraftLine], quotes: Mapping[str, ConversionQuoted], currency: str
) -> list[tuple[DraftLine, Decimal, Decimal]]:
    """Each line with its unit price and amount in ``currency``, exact: ``x rate`` of its quote; a prorated
    fixed piece by the remainder rule in ``currency`` (`proration.piece`)."""
    out = []
    for line in lines:
        if line.currency == currency:
            rate, amount = Decimal(1), line.amount
        else:
            quote = quotes.get(line.currency)
            if quote is None:
                raise CannotInvoice(f"no conversion from {line.currency} to {currency} was quoted")
            by_line = {a.line_id: a.converted for a in quote.amounts}
            if line.line_id not in by_line:
                raise CannotInvoice(f"the conversion quote from {line.currency} misses line {line.line_id}")
            rate, amount = quote.rate, by_line[line.line_id]
        unit_price = line.unit_price * rate
        if line.prorated:  # each exact share is replaced by its piece of the converted price
            rest = _SUM.subtract(line.amount, _sum(p.amount for p in line.prorated))
            pieces = _sum(piece(p.price * rate, first=p.first, end=p.end, days=p.days, currency=currency)
                          for p in line.prorated)  # fmt: skip
            amount = pieces if rest == 0 else _SUM.add(_SUM.multiply(rest, rate), pieces)
            if line.quantity == 1:
                unit_price = _plain(amount)  # one "prorated period" (or adjustment) at its own amount
        out.append((line, unit_price, amount))
    return out


def _scope(d: DiscountState) -> str:
    if d.company_id is not None and d.plan_id is None:
        return "invoice"
    return "plan" if d.plan_id is not None else "line"


def apply_discounts(
    lines: Sequence[tuple[DraftLine, Decimal, Decimal]],
    discounts: Iterable[DiscountState],
    *,
    company_id: UUID,
    currency: str,
) -> list[PricedLine]:
    """Discount each (line, unit price, exact amount) and round its net half-up (see the module doc)."""
    pool = list(discounts)
    schedules = _Schedules(pool, company_id)
    by_id = {str(d.discount_id): d for d in pool}
    shares: dict[UUID, dict[str, Fraction]] = {}  # per line: f_d of each discount applying on some day
    for line, _, amount in lines:
        takes = pool and amount > 0 and line.kind != "adjustment"  # corrections and adjustments take none
        shares[line.line_id] = _shares(line, schedules) if takes else {}
        for discount_id in shares[line.line_id]:
            d = by_id[discount_id]
            if d.discount_type is DiscountType.FIXED_AMOUNT and d.currency != currency:
                raise CannotInvoice(
                    f"fixed discount {d.name!r} is in {d.currency} but the invoice is in {currency}; "
                    "a fixed discount is not converted"
                )
    exact = {line.line_id: amount for line, _, amount in lines}
    # the "earlier line" of a largest-remainder tie (docs/billing-rules.md §7): by kind, service, unit price
    order = {x.line_id: (x.kind, x.service_ref or "", x.unit_price, str(x.line_id)) for x, _, _ in lines}
    taken: dict[UUID, Decimal] = defaultdict(Decimal)
    applied: dict[UUID, list[AppliedDiscount]] = defaultdict(list)

    def give(line_id: UUID, d: DiscountState, amount: Decimal) -> None:
        amount = min(amount, exact[line_id] - taken[line_id])  # never below zero
        if amount > 0:
            taken[line_id] += amount
            applied[line_id].append(
                AppliedDiscount(discount_id=d.discount_id, name=d.name, scope=_scope(d), amount=amount)
            )

    used = {i for share in shares.values() for i in share}
    ordered = sorted(
        (by_id[i] for i in used), key=lambda d: (d.discount_type is not DiscountType.PERCENTAGE, str(d.discount_id))
    )
    for d in ordered:
        key = str(d.discount_id)
        scope_lines = sorted((i for i, share in shares.items() if key in share), key=order.__getitem__)
        if d.discount_type is DiscountType.PERCENTAGE and _scope(d) != "invoice":
            for line_id in scope_lines:
                give(line_id, d, _exact(Fraction(exact[line_id]) * Fraction(d.value) / 100 * shares[line_id][key]))
            continue
        if d.discount_type is DiscountType.PERCENTAGE:
            bases = [_exact(Fraction(exact[i]) * shares[i][key]) for i in scope_lines]
            total = round_half_up(sum(bases, Decimal(0)) * d.value / HUNDRED, currency=currency)
        else:
            bases = [exact[i] - taken[i] for i in scope_lines]
            room = _round_down(sum(bases, Decimal(0)), currency)
            total = min(d.value, room)
        if total <= 0 or sum(bases, Decimal(0)) <= 0:
            continue
        for line_id, part in zip(scope_lines, allocate_largest_remainder(total, bases, currency=currency), strict=True):
            give(line_id, d, part)

    priced = []
    for line, unit_price, amount in lines:
        discount = taken[line.line_id]
        priced.append(
            PricedLine(
                line=line,
                unit_price=unit_price,
                amount_exact=amount,
                discount_exact=discount,
                discounts=applied[line.line_id],
                amount=round_half_up(amount, currency=currency),  # ROUND_HALF_UP: the line's amount
                net_amount=round_half_up(amount - discount, currency=currency),  # ROUND_HALF_UP: the net
            )
        )
    return priced


def _shares(line: DraftLine, schedules: _Schedules) -> dict[str, Fraction]:
    """``f_d`` for each discount applying on some service day of the line: the share of the line's days on
    which it applies, each span weighted by its charges' amount."""
    one_day = ServiceSpan(start=line.first_day, end=line.first_day + timedelta(days=1), amount=line.amount)
    spans = line.spans or [one_day]
    weight = sum((Fraction(s.amount) for s in spans), Fraction(0))
    if weight <= 0:
        return {}
    covered: dict[str, Fraction] = defaultdict(Fraction)
    for s in spans:
        days = (s.end - s.start).days
        day = s.start
        while day < s.end:
            for discount_id in schedules.on(line.plan_id, line.service_id, day):
                covered[discount_id] += Fraction(s.amount) / days
            day += timedelta(days=1)
    return {i: c / weight for i, c in covered.items() if c > 0}


_EXACT = Context(prec=60)
_SUM = Context(prec=200)  # sums of exact charges: no digit lost, so exact shares cancel to the last one


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for v in values:
        total = _SUM.add(total, v)
    return total


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, never in exponent notation ("54.8400" -> "54.84", "1E+2" -> "100")."""
    normal = value.normalize(_SUM)
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def _exact(value: Fraction) -> Decimal:
    """A rational amount as a Decimal: exact when it terminates within 60 digits (so a half-cent tie stays one)."""
    return _EXACT.divide(Decimal(value.numerator), Decimal(value.denominator))


def _round_down(amount: Decimal, currency: str) -> Decimal:
    quantum = Decimal(1).scaleb(-currency_info(currency).minor_units)
    return amount.quantize(quantum, rounding=ROUND_DOWN)


def lines_to_tax(priced: Iterable[PricedLine], tax_categories: Mapping[UUID, str | None]) -> list[LineToTax]:
    return [
        LineToTax(
            line_id=p.line.line_id,
            amount=p.net_amount,
            tax_category=tax_categories.get(p.line.service_id) if p.line.service_id else None,
        )
        for p in priced
    ]
