"""Invoicing's reports, pure (no I/O, no clock): billed amounts grouped, currency totals in the base currency,
accounts-receivable aging. The adapter (`adapters/reports.py`) reads invoicing's own tables; nothing here
reads another service's data (docs/architecture.md "Reports").

- **Billed amounts** are the sums of issued invoices' lines (each already rounded to the currency's minor
  units when the invoice was built, so nothing is rounded here): ``amount`` before discounts, ``discounts``,
  ``net`` (= amount - discounts), ``tax``, ``total`` (= net + tax). One row per group key and currency:
  amounts in different currencies are never added together.
- **Currency totals**: each invoice's total is converted to the tenant's base currency with the
  exchange-rate row pinned on that invoice (rows are quoted as units of the currency per 1 base currency,
  so ``total / rate``), **rounded half-up to the base currency's minor units per invoice** (the named
  boundary), and the rounded amounts are summed. An invoice in the base currency counts as it is. An invoice
  without a pinned row for its currency (its charges were priced in its own currency, so nothing was
  converted) is never converted with a rate it was not issued with: it is counted in ``unconverted``.
- **Aging**: outstanding = total - amount paid - credits applied (credit notes applied to an invoice count
  in credits applied); days past due = ``as_of - due_date``; 0 or less is ``current``, then 1-30, 31-60,
  61-90 and over 90. Invoices issued after ``as_of`` are left out; the outstanding amount is today's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.money import round_half_up

# Exact enough for any total / rate before the half-up rounding at the named boundary.
_DIVISION = Context(prec=40)

ISSUED = ("finalized", "sent", "viewed", "partially_paid", "paid", "overdue", "disputed")
"""Issued invoices: finalized and every later status except void (drafts, held, cancelled are not issued;
``credited`` periods became credit notes, not invoices)."""

OPEN = ("finalized", "sent", "viewed", "partially_paid", "overdue", "disputed")
"""Invoices a client may still owe on."""


class GroupBy(StrEnum):
    PLAN_TYPE = "plan_type"
    SERVICE_CATEGORY = "service_category"
    SERVICE = "service"
    CLIENT = "client"
    PERIOD = "period"


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One line of an issued invoice, with what it was for (from the invoice's draft lines)."""

    plan_id: UUID | None
    service_id: UUID | None
    service_ref: str | None
    amount: Decimal
    discount: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class PinnedRate:
    currency: str
    base_currency: str
    rate: Decimal  # units of currency per 1 base_currency


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    invoice_id: UUID
    invoice_number: str | None
    company_id: UUID
    company_name: str
    status: str
    currency: str
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    total: Decimal
    amount_paid: Decimal
    credits_applied: Decimal
    lines: Sequence[ReportLine] = ()
    rates: Sequence[PinnedRate] = ()

    @property
    def outstanding(self) -> Decimal:
        return self.total - self.amount_paid - self.credits_applied


@dataclass(frozen=True, slots=True)
class Names:
    """What invoicing's catalog read model knows about plans, services and categories (for keys and labels)."""

    plan_types: Mapping[UUID, str] = field(default_factory=dict)
    service_names: Mapping[UUID, str] = field(default_factory=dict)
    service_categories: Mapping[UUID, UUID | None] = field(default_factory=dict)
    category_names: Mapping[UUID, str] = field(default_factory=dict)


NO_PLAN = ("none", "No plan (billing adjustments)")
UNKNOWN_PLAN = ("unknown", "Plan not known to invoicing")
NO_SERVICE = ("none", "No service (billing adjustments)")
UNCATEGORIZED = ("uncategorized", "Uncategorized")


def _key(group_by: GroupBy, invoice: IssuedInvoice, line: ReportLine, names: Names) -> tuple[str, str]:
    if group_by is GroupBy.CLIENT:
        return str(invoice.company_id), invoice.company_name
    if group_by is GroupBy.PERIOD:
        key = f"{invoice.period_start.isoformat()}/{invoice.period_end.isoformat()}"
        return key, f"{invoice.period_start.isoformat()} to {invoice.period_end.isoformat()} (exclusive)"
    if group_by is GroupBy.PLAN_TYPE:
        if line.plan_id is None:
            return NO_PLAN
        plan_type = names.plan_types.get(line.plan_id)
        return (plan_type, plan_type) if plan_type else UNKNOWN_PLAN
    if line.service_id is None:
        return NO_SERVICE
    if group_by is GroupBy.SERVICE:
        ref = line.service_ref or str(line.service_id)
        return ref, names.service_names.get(line.service_id, ref)
    category = names.service_categories.get(line.service_id)
    if category is None:
        return UNCATEGORIZED
    return str(category), names.category_names.get(category, str(category))


def billed(invoices: Iterable[IssuedInvoice], group_by: GroupBy, names: Names) -> list[dict[str, Any]]:
    """Billed amounts per group key and currency, sorted by key then currency."""
    sums: dict[tuple[str, str], list[Decimal]] = {}
    labels: dict[str, str] = {}
    counted: dict[tuple[str, str], set[UUID]] = defaultdict(set)
    for invoice in invoices:
        for line in invoice.lines:
            key, label = _key(group_by, invoice, line, names)
            labels[key] = label
            slot = (key, invoice.currency)
            zero = round_half_up(Decimal(0), currency=invoice.currency)
            acc = sums.setdefault(slot, [zero] * 5)
            for i, value in enumerate((line.amount, line.discount, line.net, line.tax, line.total)):
                acc[i] += value
            counted[slot].add(invoice.invoice_id)
    return [
        {
            "key": key,
            "label": labels[key],
            "currency": currency,
            "amount": str(acc[0]),
            "discounts": str(acc[1]),
            "net": str(acc[2]),
            "tax": str(acc[3]),
            "total": str(acc[4]),
            "invoices": len(counted[(key, currency)]),
        }
        for (key, currency), acc in sorted(sums.items())
    ]


class NoPinnedRate(LookupError):
    """The invoice carries no exchange-rate row for its currency against the base currency."""


def in_base(invoice: IssuedInvoice, base_currency: str) -> Decimal:
    """The invoice's total in ``base_currency`` with the rate pinned on it, rounded half-up per invoice."""
    if invoice.currency == base_currency:
        return invoice.total
    for row in invoice.rates:
        if row.currency == invoice.currency and row.base_currency == base_currency and row.rate > 0:
            # The named boundary: each invoice's converted total is rounded to the base currency's minor units.
            return round_half_up(_DIVISION.divide(invoice.total, row.rate), currency=base_currency)
    raise NoPinnedRate(f"invoice {invoice.invoice_id} has no pinned {invoice.currency}/{base_currency} rate")


def currency_totals(invoices: Iterable[IssuedInvoice], base_currency: str) -> dict[str, Any]:
    """Per currency: invoice count, total, and total in the base currency (per-invoice rounded, then summed)."""
    zero_base = round_half_up(Decimal(0), currency=base_currency)
    per: dict[str, dict[str, Any]] = {}
    for invoice in invoices:
        row = per.setdefault(
            invoice.currency,
            {
                "currency": invoice.currency,
                "invoices": 0,
                "total": round_half_up(Decimal(0), currency=invoice.currency),
                "total_in_base": zero_base,
                "unconverted": 0,
            },
        )
        row["invoices"] += 1
        row["total"] += invoice.total
        try:
            row["total_in_base"] += in_base(invoice, base_currency)
        except NoPinnedRate:
            row["unconverted"] += 1
    rows = [per[c] for c in sorted(per)]
    grand = sum((r["total_in_base"] for r in rows), zero_base)
    return {
        "base_currency": base_currency,
        "rows": [r | {"total": str(r["total"]), "total_in_base": str(r["total_in_base"])} for r in rows],
        "total_in_base": str(grand),
    }


BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")


def bucket_of(days_past_due: int) -> str:
    """The aging bucket of an invoice ``days_past_due`` days past its due date (0 or less: not yet due)."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1_30"
    if days_past_due <= 60:
        return "31_60"
    if days_past_due <= 90:
        return "61_90"
    return "over_90"


def aging(invoices: Iterable[IssuedInvoice], as_of: date) -> dict[str, Any]:
    """Outstanding amounts per client and currency in aging buckets, and a total row per currency."""
    rows: dict[tuple[str, UUID], dict[str, Any]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for invoice in invoices:
        if invoice.status not in OPEN or invoice.issue_date > as_of or invoice.outstanding <= 0:
            continue
        zero = round_half_up(Decimal(0), currency=invoice.currency)
        bucket = bucket_of((as_of - invoice.due_date).days)
        row = rows.setdefault(
            (invoice.currency, invoice.company_id),
            {"company_id": str(invoice.company_id), "company_name": invoice.company_name, "currency": invoice.currency}
            | dict.fromkeys((*BUCKETS, "total"), zero)
            | {"invoices": 0},
        )
        total = totals.setdefault(
            invoice.currency,
            {"company_id": None, "company_name": "Total", "currency": invoice.currency}
            | dict.fromkeys((*BUCKETS, "total"), zero)
            | {"invoices": 0},
        )
        for target in (row, total):
            target[bucket] += invoice.outstanding
            target["total"] += invoice.outstanding
            target["invoices"] += 1

    def wire(r: dict[str, Any]) -> dict[str, Any]:
        return r | {k: str(r[k]) for k in (*BUCKETS, "total")}

    ordered = sorted(rows.values(), key=lambda r: (r["company_name"], r["company_id"], r["currency"]))
    return {
        "as_of": as_of.isoformat(),
        "rows": [wire(r) for r in ordered],
        "totals": [wire(totals[c]) for c in sorted(totals)],
    }
