"""Building an invoice from a period's charges: pure, no I/O, no clock.

Charges keep full precision; each line sums its charges and is rounded half-up to the currency's minor
units once (the named boundary). Discounts, taxes and conversion join this pipeline in the invoicing and
tax-currency issues, in the order of docs/architecture.md; until then each line's discount and tax are zero.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from shared.contracts.catalog import CompanyState
from shared.contracts.invoices import Customer, Invoice, InvoiceLine, InvoiceStatus
from shared.contracts.rating import ChargeCreated
from shared.money import round_half_up


class CannotInvoice(Exception):
    """The invoice must be held: the reason says why."""


@dataclass(frozen=True, slots=True)
class Draft:
    invoice_id: UUID
    company: CompanyState
    period_start: date
    period_end: date
    issue_date: date
    charges: list[ChargeCreated]


def invoice_id_for(tenant_id: UUID, company_id: UUID, period_start: date, period_end: date) -> UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"invoice:{tenant_id}:{company_id}:{period_start}:{period_end}")


def invoice_number(issue_date: date, sequence: int) -> str:
    """``INV-{YYMM}-{NNNNN}``: at least five digits, more if a month needs them."""
    if sequence < 1:
        raise ValueError(f"invoice sequence numbers start at 1, got {sequence}")
    return f"INV-{issue_date:%y%m}-{sequence:05d}"


def check(draft: Draft) -> None:
    """Raise `CannotInvoice` if the draft cannot be issued correctly (checked before a number is spent)."""
    currency = draft.company.currency
    foreign = {c.currency for c in draft.charges} - {currency}
    if foreign:
        raise CannotInvoice(
            f"charges in {', '.join(sorted(foreign))} need conversion to {currency}; no exchange rate is available yet"
        )
    _billing_email(draft)


def _billing_email(draft: Draft) -> str:
    if not draft.company.billing_email:
        raise CannotInvoice(f"client {draft.company.company_ref!r} has no billing email")
    return draft.company.billing_email


def build(draft: Draft, *, number: str) -> Invoice:
    check(draft)
    currency = draft.company.currency
    lines = [_line(draft, group, currency) for group in _groups(draft.charges)]
    zero = round_half_up(Decimal(0), currency=currency)
    subtotal = sum((line.amount for line in lines), zero)
    return Invoice(
        invoice_id=draft.invoice_id,
        invoice_number=number,
        status=InvoiceStatus.FINALIZED,
        currency=currency,
        tax_inclusive=False,
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
        discount_total=zero,
        tax_total=zero,
        total=subtotal,
        credits_applied=zero,
        amount_paid=zero,
        amount_due=subtotal,
        fx=[],
    )


def _groups(charges: list[ChargeCreated]) -> list[list[ChargeCreated]]:
    grouped: dict[tuple[str, str, Decimal, str, str], list[ChargeCreated]] = defaultdict(list)
    for c in sorted(charges, key=lambda c: (c.service_ref, str(c.charge_id))):
        grouped[_group_key(c)].append(c)
    return list(grouped.values())


def _group_key(c: ChargeCreated) -> tuple[str, str, Decimal, str, str]:
    """Charges on one line share all of this; the line's id is derived from it."""
    return (c.kind, c.service_ref, c.unit_price, c.unit, c.description)


def _line(draft: Draft, group: list[ChargeCreated], currency: str) -> InvoiceLine:
    first = group[0]
    amount = round_half_up(sum((c.amount for c in group), Decimal(0)), currency=currency)  # ROUND_HALF_UP
    zero = round_half_up(Decimal(0), currency=currency)
    return InvoiceLine(
        line_id=uuid.uuid5(draft.invoice_id, json.dumps(_group_key(first), default=str)),
        kind=first.kind,
        service_ref=first.service_ref,
        description=first.description + (" (late usage)" if any(c.late for c in group) else ""),
        quantity=sum((c.quantity for c in group), Decimal(0)),
        unit=first.unit,
        unit_price=first.unit_price,
        amount=amount,
        discount_amount=zero,
        net_amount=amount,
        taxes=[],
        tax_amount=zero,
        total=amount,
        period_start=draft.period_start,
        period_end=draft.period_end,
    )
