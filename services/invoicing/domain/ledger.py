"""The transactions ledger and the money rules of payments, refunds and credits: pure, no I/O, no clock.

Every financial event of a client is one `Entry`, never edited. Two effects per entry:

- ``balance_effect``: what the client owes changes by it. Invoice ``+total``; payment ``-amount``; refund
  ``+amount``; credit note ``-total``; void ``-total`` (the invoice reversed); adjustment ``±amount``.
  So **balance = invoices - payments - credits + refunds** (voids reverse invoices).
- ``credit_effect``: the client's *available credit* changes by it. The part of a payment beyond what its
  invoice still owed ``+excess``; a credit note beyond what its invoice still owed ``+excess``; credit
  applied to an invoice at finalization ``-applied`` (a ``credit_applied`` entry, balance effect 0); a void
  gives back the credit its invoice had applied ``+credits_applied``; a refund drawn from available
  credit ``-drawn``.

Available credit is applied automatically to the next invoice, up to its total.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Entry:
    transaction_id: UUID
    company_id: UUID
    kind: str
    amount: Decimal
    balance_effect: Decimal
    credit_effect: Decimal
    currency: str
    invoice_id: UUID | None
    reference_id: UUID | None
    description: str
    occurred_at: datetime


def entry_id(reference: UUID, kind: str) -> UUID:
    """One entry per event and kind: a retried effect writes the same id (and nothing more)."""
    return uuid.uuid5(reference, f"ledger:{kind}")


@dataclass(frozen=True, slots=True)
class PaymentSplit:
    applied: Decimal  # pays the invoice
    excess: Decimal  # becomes available credit


def split_payment(amount: Decimal, *, due: Decimal) -> PaymentSplit:
    """A payment pays what is due and no more; the excess (an over-payment) becomes credit."""
    if amount <= 0:
        raise ValueError("a payment amount must be positive")
    applied = min(amount, max(due, ZERO))
    return PaymentSplit(applied=applied, excess=amount - applied)


def status_after_payment(*, total: Decimal, credits: Decimal, paid: Decimal, credited: Decimal) -> str:
    """``paid`` when nothing is left to pay, ``partially_paid`` when something was paid, else ``finalized``."""
    due = total - credits - paid - credited
    if due <= 0:
        return "paid"
    return "partially_paid" if paid > 0 else "finalized"


@dataclass(frozen=True, slots=True)
class RefundSplit:
    from_credit: Decimal  # taken back from the client's available credit (the payment's unused excess)
    from_invoice: Decimal  # reopens the invoice: its amount paid goes down


def split_refund(amount: Decimal, *, credit_available: Decimal) -> RefundSplit:
    """A refund first returns the client's available credit (money it over-paid), then reopens the invoice:
    what paid it is returned and the invoice owes that again."""
    from_credit = max(ZERO, min(amount, credit_available))
    return RefundSplit(from_credit=from_credit, from_invoice=amount - from_credit)


def balance(entries: list[Entry]) -> Decimal:
    return sum((e.balance_effect for e in entries), ZERO)


def credit(entries: list[Entry]) -> Decimal:
    return sum((e.credit_effect for e in entries), ZERO)
