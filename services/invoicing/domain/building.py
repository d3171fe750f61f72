"""Assembling a finalized invoice from priced lines and tax-currency's answer: pure, no I/O, no clock.

The lines come from `pricing` (converted, discounted, net rounded half-up); the taxes from ``tax.quoted``
(each tax rounded per line by tax-currency). The invoice's sums are the sums of its lines, never rounded
again. Available credit is applied up to the total (``credits_applied``).

**Tax-inclusive** (``tax.tax_inclusive``: the tenant's or client's catalog prices include tax): each priced
line's rounded net is its *gross* G (after discounts, which apply to gross prices); tax-currency splits it,
per line, into taxes ``round_half_up(G x f_i / F)`` and net ``N = G - taxes`` (its rule), so N + tax = G
exactly. The document's amounts are always net of tax (the public contract), backed out per line here:

- discount ``D = d - round_half_up(d x tax / G)`` (the gross discount d less its tax share in the line's own
  proportion; d when G is 0 and nothing is taxed), amount ``A = N + D`` (so amount - discount = net);
- unit price ``A / quantity`` to 6 decimals (display; extra precision is allowed on unit prices).

So line total = N + tax = G, the invoice total = the sum of the inclusive amounts, to the cent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from services.invoicing.domain.pricing import CannotInvoice, PricedLine
from shared.contracts.catalog import CompanyState
from shared.contracts.invoices import Customer, FxConversion, Invoice, InvoiceLine, InvoiceStatus, TaxLine
from shared.contracts.tax import QuotedLine, TaxQuoted
from shared.money import round_half_up


@dataclass(frozen=True, slots=True)
class Draft:
    invoice_id: UUID
    company: CompanyState
    period_start: date
    period_end: date
    issue_date: date


def invoice_id_for(tenant_id: UUID, company_id: UUID, period_start: date, period_end: date) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"invoice:{tenant_id}:{company_id}:{period_start}:{period_end}")


def invoice_number(issue_date: date, sequence: int) -> str:
    """``INV-{YYMM}-{NNNNN}``: at least five digits, more if a month needs them."""
    if sequence < 1:
        raise ValueError(f"invoice sequence numbers start at 1, got {sequence}")
    return f"INV-{issue_date:%y%m}-{sequence:05d}"


def check(draft: Draft) -> None:
    """Raise `CannotInvoice` if the draft cannot be issued correctly (checked before a number is spent)."""
    _billing_email(draft)


def _billing_email(draft: Draft) -> str:
    if not draft.company.billing_email:
        raise CannotInvoice(f"client {draft.company.company_ref!r} has no billing email")
    return draft.company.billing_email


def build(
    draft: Draft,
    *,
    number: str,
    priced: Sequence[PricedLine],
    tax: TaxQuoted,
    fx: Sequence[FxConversion] = (),
    credit_available: Decimal = Decimal(0),
) -> Invoice:
    """The finalized invoice: ``priced`` lines taxed by ``tax`` (matched by line id)."""
    check(draft)
    currency = draft.company.currency
    if tax.currency != currency:
        raise CannotInvoice(f"taxes were quoted in {tax.currency}, the invoice is in {currency}")
    quoted = {q.line_id: q for q in tax.lines}
    missing = [str(p.line.line_id) for p in priced if p.line.line_id not in quoted]
    if missing:
        raise CannotInvoice(f"the tax quote misses lines {', '.join(missing)}")
    lines = [_line(draft, p, quoted[p.line.line_id], inclusive=tax.tax_inclusive) for p in priced]
    zero = round_half_up(Decimal(0), currency=currency)
    subtotal = sum((x.amount for x in lines), zero)
    discount_total = sum((x.discount_amount for x in lines), zero)
    tax_total = sum((x.tax_amount for x in lines), zero)
    total = subtotal - discount_total + tax_total
    credits = max(zero, min(credit_available, total))
    return Invoice(
        invoice_id=draft.invoice_id,
        invoice_number=number,
        status=InvoiceStatus.FINALIZED,
        currency=currency,
        tax_inclusive=tax.tax_inclusive,
        issue_date=draft.issue_date,
        due_date=draft.issue_date + timedelta(days=draft.company.payment_terms_days),
        period_start=draft.period_start,
        period_end=draft.period_end,
        customer=Customer(
            name=draft.company.name,
            billing_email=_billing_email(draft),
            region=draft.company.region,
            tax_id=draft.company.tax_id,
        ),
        lines=lines,
        subtotal=subtotal,
        discount_total=discount_total,
        tax_total=tax_total,
        total=total,
        credits_applied=credits,
        amount_paid=zero,
        amount_due=total - credits,
        fx=list(fx),
    )


def _line(draft: Draft, p: PricedLine, q: QuotedLine, *, inclusive: bool = False) -> InvoiceLine:
    if inclusive:
        return _inclusive_line(draft, p, q)
    if q.net_amount != p.net_amount:
        raise CannotInvoice(f"line {p.line.line_id}: taxed net {q.net_amount} is not the line's net {p.net_amount}")
    return InvoiceLine(
        line_id=p.line.line_id,
        kind=p.line.kind,
        service_ref=p.line.service_ref,
        description=p.line.description,
        quantity=p.line.quantity,
        unit=p.line.unit,
        unit_price=p.unit_price,
        amount=p.amount,
        discount_amount=p.discount_amount,
        net_amount=p.net_amount,
        taxes=[TaxLine.model_validate(t.model_dump(exclude={"tax_rate_id"})) for t in q.taxes],
        tax_amount=q.tax_amount,
        total=p.net_amount + q.tax_amount,
        period_start=draft.period_start,
        period_end=draft.period_end,
    )


UNIT_PRICE_PLACES = Decimal("0.000001")


def _inclusive_line(draft: Draft, p: PricedLine, q: QuotedLine) -> InvoiceLine:
    gross = p.net_amount
    if q.net_amount + q.tax_amount != gross:
        raise CannotInvoice(f"line {p.line.line_id}: taxed {q.net_amount} + {q.tax_amount} is not its gross {gross}")
    currency = draft.company.currency
    # Named rounding boundary: the discount's tax share, in the line's own proportion, half-up.
    discount = p.discount_amount - (
        round_half_up(p.discount_amount * q.tax_amount / gross, currency=currency) if gross else Decimal(0)
    )
    amount = q.net_amount + discount
    quantity = p.line.quantity
    unit_price = (amount / quantity).quantize(UNIT_PRICE_PLACES) if quantity else amount
    return InvoiceLine(
        line_id=p.line.line_id,
        kind=p.line.kind,
        service_ref=p.line.service_ref,
        description=p.line.description,
        quantity=quantity,
        unit=p.line.unit,
        unit_price=unit_price,
        amount=amount,
        discount_amount=discount,
        net_amount=q.net_amount,
        taxes=[TaxLine.model_validate(t.model_dump(exclude={"tax_rate_id"})) for t in q.taxes],
        tax_amount=q.tax_amount,
        total=gross,
        period_start=draft.period_start,
        period_end=draft.period_end,
    )
