"""The order on an invoice line, pure (no I/O, no clock): docs/architecture.md "The order on an invoice line".

1. **Lines** group a period's charges (kind, service, plan, unit price, unit, description, currency); a
   line's amount is the sum of its charges at full precision, in the charges' currency.
2. **Converted** to the invoice currency with tax-currency's ``conversion.quoted`` (exact, not rounded):
   ``amount x rate`` and ``unit_price x rate``.
3. **Discounted** (see `apply_discounts`), still exact.
4. **Net rounded** half-up to the currency's minor units: the named boundary. ``amount`` is the converted
   amount rounded the same way and ``discount_amount = amount - net_amount``, so every line reconciles.
5. **Taxed** by tax-currency (``tax.quoted``) on the rounded net, each tax rounded per line there.

Discounts (catalog's `applicable_discounts` decides which apply to a line on its first service day):

- a **service** discount applies to that service's lines, a **plan** discount (or a client's discount on a
  plan) to the lines that plan priced, a **client-wide** discount to the whole invoice (its lines);
- a client-specific discount overrides the plan's and service's defaults (catalog's precedence);
- only approved, active discounts within their dates count (``discount_in_effect``);
- **percentages** first, each on the line's converted amount (summed, at most 100 %); a client-wide
  percentage is computed once on its lines' total, rounded half-up, and allocated across them by largest
  remainder; plan and service percentages are exact per line;
- then **fixed amounts**, once per discount (not per line): at most what remains of its lines (rounded
  down to minor units), allocated across its lines by largest remainder of what remains on each;
- a fixed amount must be in the invoice currency: otherwise the invoice is held (`CannotInvoice`), never
  converted silently;
- lines with a zero or negative amount (corrections) and billing adjustments take no discount.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contracts.catalog import DiscountState, DiscountType, applicable_discounts
from shared.contracts.rating import ChargeCreated
from shared.contracts.tax import AmountToConvert, ConversionQuoted, LineToTax
from shared.currencies import currency as currency_info
from shared.money import allocate_largest_remainder, round_half_up

HUNDRED = Decimal(100)


class CannotInvoice(Exception):
    """The invoice must be held: the reason says why."""


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


def _group_key(c: ChargeCreated) -> tuple[str, str, str, Decimal, str, str, str]:
    plan = str(c.price_rule.plan_id) if c.price_rule.plan_id else ""
    return (c.kind, c.service_ref, plan, c.unit_price, c.unit, c.description, c.currency)


def draft_lines(invoice_id: UUID, charges: Iterable[ChargeCreated]) -> list[DraftLine]:
    grouped: dict[tuple[str, str, str, Decimal, str, str, str], list[ChargeCreated]] = defaultdict(list)
    for c in sorted(charges, key=lambda c: (c.service_ref, str(c.charge_id))):
        grouped[_group_key(c)].append(c)
    lines = []
    for key, group in grouped.items():
        first = group[0]
        lines.append(
            DraftLine(
                line_id=uuid.uuid5(invoice_id, json.dumps(key, default=str)),
                kind=first.kind,
                service_id=first.service_id,
                service_ref=first.service_ref,
                plan_id=first.price_rule.plan_id,
                description=first.description + (" (late usage)" if any(c.late for c in group) else ""),
                quantity=sum((c.quantity for c in group), Decimal(0)),
                unit=first.unit,
                unit_price=first.unit_price,
                amount=sum((c.amount for c in group), Decimal(0)),
                currency=first.currency,
                first_day=min(c.service_period_start or c.period_start for c in group),
                charge_ids=sorted((c.charge_id for c in group), key=str),
                source_records=sorted({r for c in group for r in c.source_records}, key=str),
            )
        )
    return lines


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
    """Each line with its unit price and amount in ``currency``, exact: ``x rate`` of its quote."""
    out = []
    for line in lines:
        if line.currency == currency:
            out.append((line, line.unit_price, line.amount))
            continue
        quote = quotes.get(line.currency)
        if quote is None:
            raise CannotInvoice(f"no conversion from {line.currency} to {currency} was quoted")
        by_line = {a.line_id: a.converted for a in quote.amounts}
        if line.line_id not in by_line:
            raise CannotInvoice(f"the conversion quote from {line.currency} misses line {line.line_id}")
        out.append((line, line.unit_price * quote.rate, by_line[line.line_id]))
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
    applies: dict[UUID, list[DiscountState]] = {}
    by_id: dict[UUID, DiscountState] = {}
    for line, _, amount in lines:
        if amount <= 0 or line.kind == "adjustment":  # corrections and adjustments take no discount
            applies[line.line_id] = []
            continue
        chosen = applicable_discounts(
            pool, company_id=company_id, plan_id=line.plan_id, service_id=line.service_id, day=line.first_day
        )
        applies[line.line_id] = chosen
        for d in chosen:
            by_id[d.discount_id] = d
            if d.discount_type is DiscountType.FIXED_AMOUNT and d.currency != currency:
                raise CannotInvoice(
                    f"fixed discount {d.name!r} is in {d.currency} but the invoice is in {currency}; "
                    "a fixed discount is not converted"
                )
    exact = {line.line_id: amount for line, _, amount in lines}
    taken: dict[UUID, Decimal] = defaultdict(Decimal)
    applied: dict[UUID, list[AppliedDiscount]] = defaultdict(list)

    def give(line_id: UUID, d: DiscountState, amount: Decimal) -> None:
        amount = min(amount, exact[line_id] - taken[line_id])  # never below zero
        if amount > 0:
            taken[line_id] += amount
            applied[line_id].append(
                AppliedDiscount(discount_id=d.discount_id, name=d.name, scope=_scope(d), amount=amount)
            )

    ordered = sorted(by_id.values(), key=lambda d: (d.discount_type is not DiscountType.PERCENTAGE, str(d.discount_id)))
    for d in ordered:
        scope_lines = [line_id for line_id, chosen in applies.items() if d in chosen]
        if d.discount_type is DiscountType.PERCENTAGE and _scope(d) != "invoice":
            for line_id in scope_lines:
                give(line_id, d, exact[line_id] * d.value / HUNDRED)
            continue
        if d.discount_type is DiscountType.PERCENTAGE:
            bases = [exact[i] for i in scope_lines]
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
