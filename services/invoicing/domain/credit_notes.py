"""Credit notes, pure: what a credit note credits and how it lands.

A credit note credits an invoice (a finalized invoice is immutable: changes are credit notes). Two forms:

- **lines**: whole invoice lines, credited exactly as invoiced (amount, discount, net, each tax, total), so
  the credit note and the invoice net to the lines not credited;
- **part of a line** (``parts``: line id → net amount): that much of the line's net with its taxes in
  proportion. Each tax is allocated cumulatively: this credit carries
  ``round(tax * (before + part) / net) - round(tax * before / net)`` (half-up), where ``before`` is the net
  already credited on that line, so partial credits of a whole line carry exactly its tax, and the invoice
  less its credit notes is, line by line, net and tax, what remains;
- **amount**: a goodwill-style credit of a gross amount, one untaxed ``adjustment`` line.

When applied, it first reduces what the invoice still owes; the rest becomes available credit. Number:
``CN-{YYMM}-{NNNNN}``, gap-free per tenant and month (its own counter), spent when it is applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
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
    parts: Mapping[UUID, Decimal] | None = None,
    credited_before: Mapping[UUID, Decimal] | None = None,
) -> CreditNote:
    """The credit note (numbered with a placeholder until applied). Credits never exceed the invoice total.

    ``credited_before``: per invoice line, the net earlier credit notes (not cancelled) already credited."""
    if sum(x is not None for x in (line_ids, amount, parts)) != 1:
        raise CannotCredit(
            "line_ids", "give one of line_ids (whole lines), parts (part of lines) or amount (one untaxed line)"
        )
    if parts is not None:
        lines = _partial_lines(invoice, credit_note_id, parts, credited_before or {})
    elif line_ids is not None:
        by_id = {x.line_id: x for x in invoice.lines}
        unknown = [str(i) for i in line_ids if i not in by_id]
        if unknown or not line_ids:
            raise CannotCredit(
                "line_ids", f"not lines of {invoice.invoice_number}: {', '.join(unknown) or 'none given'}"
            )
        partly = [str(i) for i in line_ids if (credited_before or {}).get(i, Decimal(0)) > 0]
        if partly:
            raise CannotCredit("line_ids", f"lines {', '.join(partly)} are partly credited: credit the rest as parts")
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


def _partial_lines(
    invoice: Invoice, credit_note_id: UUID, parts: Mapping[UUID, Decimal], before: Mapping[UUID, Decimal]
) -> list[InvoiceLine]:
    by_id = {x.line_id: x for x in invoice.lines}
    unknown = [str(i) for i in parts if i not in by_id]
    if unknown or not parts:
        raise CannotCredit("parts", f"not lines of {invoice.invoice_number}: {', '.join(unknown) or 'none given'}")
    out: list[InvoiceLine] = []
    for line_id, part in parts.items():
        line = by_id[line_id]
        done = before.get(line_id, Decimal(0))
        if part <= 0 or round_half_up(part, currency=invoice.currency) != part:
            raise CannotCredit("parts", f"line {line_id}: a part must be positive in {invoice.currency} minor units")
        if done + part > line.net_amount:
            raise CannotCredit(
                "parts", f"line {line_id}: {done} of its net {line.net_amount} is credited already; {part} is more"
            )
        taxes = [
            tax.model_copy(
                update={
                    "amount": _share(tax.amount, done + part, line.net_amount, invoice.currency)
                    - _share(tax.amount, done, line.net_amount, invoice.currency)
                }
            )
            for tax in line.taxes
        ]
        tax_amount = sum((x.amount for x in taxes), round_half_up(Decimal(0), currency=invoice.currency))
        out.append(
            InvoiceLine.model_validate(
                line.model_dump()
                | {
                    "line_id": uuid.uuid5(credit_note_id, str(line_id)),
                    "description": f"Part of: {line.description}",
                    "quantity": Decimal(1),
                    "unit_price": part,
                    "amount": part,
                    "discount_amount": round_half_up(Decimal(0), currency=invoice.currency),
                    "net_amount": part,
                    "taxes": taxes,
                    "tax_amount": tax_amount,
                    "total": part + tax_amount,
                }
            )
        )
    return out


def _share(tax: Decimal, credited: Decimal, net: Decimal, currency: str) -> Decimal:
    """The tax carried by ``credited`` of ``net``: the named rounding boundary of a partial credit (half-up)."""
    if credited == net:
        return tax
    return round_half_up(tax * credited / net, currency=currency)


def credited_nets(invoice: Invoice, notes: Sequence[CreditNote]) -> dict[UUID, Decimal]:
    """Per invoice line, the net its credit notes ``notes`` (the ones still standing) credit."""
    out: dict[UUID, Decimal] = {}
    for note in notes:
        credited = {x.line_id: x.net_amount for x in note.lines}
        for line in invoice.lines:
            if (mine := uuid.uuid5(note.credit_note_id, str(line.line_id))) in credited:
                out[line.line_id] = out.get(line.line_id, Decimal(0)) + credited[mine]
    return out


def split_credit(total: Decimal, *, invoice_due: Decimal) -> tuple[Decimal, Decimal]:
    """(reduces the invoice, becomes available credit)."""
    on_invoice = max(Decimal(0), min(total, invoice_due))
    return on_invoice, total - on_invoice
