"""Credit notes, pure: what a credit note credits and how it lands.

A credit note credits an invoice (a finalized invoice is immutable: changes are credit notes). Two forms:

- **lines**: whole invoice lines, credited exactly as invoiced (amount, discount, net, each tax, total), so
  the credit note and the invoice net to the lines not credited;
- **amount**: a goodwill-style credit of a gross amount, one untaxed ``adjustment`` line.

When applied, it first reduces what the invoice still owes; the rest becomes available credit. Number:
``CN-{YYMM}-{NNNNN}``, gap-free per tenant and month (its own counter), spent when it is applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from shared.contracts.invoices import CreditNote, CreditNoteReason, Invoice, InvoiceLine
from shared.money import round_half_up

PLACEHOLDER_NUMBER = "CN-0000-00000"


class CannotCredit(ValueError):
    """The credit note cannot be made; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def credit_note_number(yymm: str, sequence: int) -> str:
    if sequence < 1:
        raise ValueError(f"credit note sequence numbers start at 1, got {sequence}")
    return f"CN-{yymm}-{sequence:05d}"


def credit_note(
    invoice: Invoice,
    *,
    credit_note_id: UUID,
    reason: CreditNoteReason,
    line_ids: Sequence[UUID] | None,
    amount: Decimal | None,
    description: str,
    already_credited: Decimal,
) -> CreditNote:
    """The credit note (numbered with a placeholder until applied). Credits never exceed the invoice total."""
    if (line_ids is None) == (amount is None):
        raise CannotCredit("line_ids", "give either line_ids (whole lines) or amount (one untaxed credit line)")
    if line_ids is not None:
        by_id = {x.line_id: x for x in invoice.lines}
        unknown = [str(i) for i in line_ids if i not in by_id]
        if unknown or not line_ids:
            raise CannotCredit(
                "line_ids", f"not lines of {invoice.invoice_number}: {', '.join(unknown) or 'none given'}"
            )
        lines = [by_id[i].model_copy(update={"line_id": uuid.uuid5(credit_note_id, str(i))}) for i in line_ids]
    else:
        assert amount is not None
        if amount <= 0 or round_half_up(amount, currency=invoice.currency) != amount:
            raise CannotCredit("amount", f"amount must be positive with at most the minor units of {invoice.currency}")
        zero = round_half_up(Decimal(0), currency=invoice.currency)
        lines = [
            InvoiceLine(
                line_id=uuid.uuid5(credit_note_id, "amount"),
                kind="adjustment",
                service_ref=None,
                description=description,
                quantity=Decimal(1),
                unit=None,
                unit_price=amount,
                amount=amount,
                discount_amount=zero,
                net_amount=amount,
                taxes=[],
                tax_amount=zero,
                total=amount,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
            )
        ]
    total = sum((x.total for x in lines), round_half_up(Decimal(0), currency=invoice.currency))
    if already_credited + total > invoice.total:
        raise CannotCredit(
            "amount", f"credits would total {already_credited + total}, more than the invoice total {invoice.total}"
        )
    return CreditNote(
        credit_note_id=credit_note_id,
        credit_note_number=PLACEHOLDER_NUMBER,
        invoice_id=invoice.invoice_id,
        reason=reason,
        currency=invoice.currency,
        lines=lines,
        total=total,
    )


def split_credit(total: Decimal, *, invoice_due: Decimal) -> tuple[Decimal, Decimal]:
    """(reduces the invoice, becomes available credit)."""
    on_invoice = max(Decimal(0), min(total, invoice_due))
    return on_invoice, total - on_invoice
