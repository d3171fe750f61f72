"""`billing.invoices.v1`: invoice events for downstream accounting. Public, fixed.

All amounts are decimal strings in the document's currency, rounded by the producer to the currency's
minor units (unit prices and rates may carry more digits). The sums are checked on validation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Self
from uuid import UUID

from pydantic import Field, model_validator

from shared.contracts.base import (
    Contract,
    CurrencyCode,
    DecimalStr,
    MoneyStr,
    NonEmptyStr,
    NonNegativeDecimalStr,
    TenantId,
    Timestamp,
    message_key,
)

__all__ = [
    "CreditNote",
    "CreditNoteReason",
    "Customer",
    "FxConversion",
    "Invoice",
    "InvoiceEvent",
    "InvoiceEventType",
    "InvoiceLine",
    "InvoiceStatus",
    "LineKind",
    "Payment",
    "Refund",
    "TaxLine",
]

_UUID_EXAMPLE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_TENANT_EXAMPLE = "0f8fad5b-d9cb-469f-a165-70867728950e"


class InvoiceEventType(StrEnum):
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_VOIDED = "invoice.voided"
    INVOICE_PAYMENT_RECORDED = "invoice.payment_recorded"
    INVOICE_REFUND_RECORDED = "invoice.refund_recorded"
    CREDIT_NOTE_ISSUED = "credit_note.issued"


class InvoiceStatus(StrEnum):
    FINALIZED = "finalized"
    SENT = "sent"
    VIEWED = "viewed"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERDUE = "overdue"
    VOID = "void"
    DISPUTED = "disputed"


class LineKind(StrEnum):
    """Known line kinds. `InvoiceLine.kind` is a plain string: v1 may add kinds, consumers must cope."""

    FIXED = "fixed"
    TIME = "time"
    USAGE = "usage"
    BUCKET_OVERAGE = "bucket_overage"
    BUNDLE = "bundle"
    ADJUSTMENT = "adjustment"


class CreditNoteReason(StrEnum):
    RETURN = "return"
    PRICING_ERROR = "pricing_error"
    SERVICE_ISSUE = "service_issue"
    DUPLICATE_CHARGE = "duplicate_charge"
    GOODWILL = "goodwill"
    OTHER = "other"


def _check(label: str, stated: Decimal, expected: Decimal, rule: str) -> None:
    if stated != expected:
        raise ValueError(f"{label} {stated} does not reconcile: {rule} = {expected}")


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


class Customer(Contract):
    """The customer as it stood at issue."""

    name: NonEmptyStr = Field(description="Client's legal or billing name.", examples=["Acme Dental LLC"])
    billing_email: NonEmptyStr = Field(description="Where invoices go.", examples=["ap@acme-dental.example"])
    region: NonEmptyStr = Field(description="Tax region of the client.", examples=["US-TX", "NG-LA", "DE"])
    tax_id: str | None = Field(description="Client's tax id, if any.", examples=["DE123456789", None])


class TaxLine(Contract):
    name: NonEmptyStr = Field(description="Tax name as printed.", examples=["VAT", "TX State Sales Tax"])
    rate: NonNegativeDecimalStr = Field(description="Rate in percent.", examples=["7.5", "19"])
    amount: MoneyStr = Field(description="Tax on the line's rounded net, rounded.", examples=["7.50"])
    compound: bool = Field(description="Whether computed on net plus earlier taxes.", examples=[False])
    exemption_reason: str | None = Field(
        description="Why the rate is zero, when exempt.", examples=[None, "NGO exemption certificate 2291"]
    )


class InvoiceLine(Contract):
    line_id: UUID = Field(description="Id of the line.", examples=[_UUID_EXAMPLE])
    kind: NonEmptyStr = Field(
        description="Line kind; known values: fixed, time, usage, bucket_overage, bundle, adjustment. "
        "More may be added within v1.",
        examples=[k.value for k in LineKind],
    )
    service_ref: str | None = Field(
        description="Catalog service code; null for adjustments.", examples=["RMM-DEVICE", None]
    )
    description: str = Field(description="Line text as printed.", examples=["Managed workstations, January"])
    quantity: DecimalStr = Field(description="Quantity billed.", examples=["42"])
    unit: str | None = Field(description="Unit of measure.", examples=["device", "hour", None])
    unit_price: MoneyStr = Field(description="Net unit price, may carry extra precision.", examples=["2.50"])
    amount: MoneyStr = Field(description="Net amount before discount.", examples=["105.00"])
    discount_amount: MoneyStr = Field(description="Discount on this line.", examples=["5.00", "0.00"])
    net_amount: MoneyStr = Field(description="amount - discount_amount.", examples=["100.00"])
    taxes: list[TaxLine] = Field(description="Taxes on net_amount.", examples=[[]])
    tax_amount: MoneyStr = Field(description="Sum of taxes[].amount.", examples=["7.50"])
    total: MoneyStr = Field(description="net_amount + tax_amount.", examples=["107.50"])
    period_start: date = Field(description="Service period start (inclusive).", examples=["2025-01-01"])
    period_end: date = Field(description="Service period end (exclusive).", examples=["2025-02-01"])

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        _check("tax_amount", self.tax_amount, _sum(t.amount for t in self.taxes), "sum of taxes[].amount")
        _check("net_amount", self.net_amount, self.amount - self.discount_amount, "amount - discount_amount")
        _check("total", self.total, self.net_amount + self.tax_amount, "net_amount + tax_amount")
        return self


class FxConversion(Contract):
    from_currency: CurrencyCode = Field(description="Currency converted from.", examples=["USD"])
    to_currency: CurrencyCode = Field(description="Currency converted to.", examples=["EUR"])
    rate: NonNegativeDecimalStr = Field(description="Units of to_currency per from_currency.", examples=["0.9231"])
    rate_date: date = Field(description="Date of the rate used.", examples=["2025-01-31"])


class Invoice(Contract):
    invoice_id: UUID = Field(description="Id of the invoice.", examples=[_UUID_EXAMPLE])
    invoice_number: str = Field(
        pattern=r"^INV-\d{4}-\d{5,}$",
        description="INV-{YYMM}-{NNNNN}, assigned at finalization; gap-free within a tenant's month.",
        examples=["INV-2501-00042"],
    )
    status: InvoiceStatus = Field(description="Status after this event.", examples=["finalized", "paid"])
    currency: CurrencyCode = Field(description="ISO 4217 code the invoice is issued in.", examples=["USD"])
    tax_inclusive: bool = Field(
        description="Whether prices were quoted tax-inclusive; amounts are always net.", examples=[False]
    )
    issue_date: date = Field(description="Issue date.", examples=["2025-02-01"])
    due_date: date = Field(description="Due date.", examples=["2025-03-03"])
    period_start: date = Field(description="Billing period start (inclusive).", examples=["2025-01-01"])
    period_end: date = Field(description="Billing period end (exclusive).", examples=["2025-02-01"])
    customer: Customer = Field(
        description="Customer snapshot at issue.",
        examples=[{"name": "Acme Dental LLC", "billing_email": "ap@acme.example", "region": "US-TX", "tax_id": None}],
    )
    lines: list[InvoiceLine] = Field(description="The invoice lines.", examples=[[]])
    subtotal: MoneyStr = Field(description="Sum of lines[].amount.", examples=["105.00"])
    discount_total: MoneyStr = Field(description="Sum of lines[].discount_amount.", examples=["5.00"])
    tax_total: MoneyStr = Field(description="Sum of lines[].tax_amount.", examples=["7.50"])
    total: MoneyStr = Field(description="subtotal - discount_total + tax_total.", examples=["107.50"])
    credits_applied: MoneyStr = Field(description="Credit balance applied.", examples=["0.00"])
    amount_paid: MoneyStr = Field(description="Payments received, net of refunds.", examples=["0.00"])
    amount_due: MoneyStr = Field(description="total - credits_applied - amount_paid.", examples=["107.50"])
    fx: list[FxConversion] = Field(
        default_factory=list, description="Currency conversions applied, if any.", examples=[[]]
    )

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start (the period is [start, end))")
        lines = self.lines
        _check("subtotal", self.subtotal, _sum(x.amount for x in lines), "sum of lines[].amount")
        _check(
            "discount_total",
            self.discount_total,
            _sum(x.discount_amount for x in lines),
            "sum of lines[].discount_amount",
        )
        _check("tax_total", self.tax_total, _sum(x.tax_amount for x in lines), "sum of lines[].tax_amount")
        _check(
            "total",
            self.total,
            self.subtotal - self.discount_total + self.tax_total,
            "subtotal - discount_total + tax_total",
        )
        _check(
            "amount_due",
            self.amount_due,
            self.total - self.credits_applied - self.amount_paid,
            "total - credits_applied - amount_paid",
        )
        return self


class CreditNote(Contract):
    credit_note_id: UUID = Field(description="Id of the credit note.", examples=[_UUID_EXAMPLE])
    credit_note_number: str = Field(
        pattern=r"^CN-\d{4}-\d{5,}$",
        description="CN-{YYMM}-{NNNNN}, same numbering rules as invoices.",
        examples=["CN-2502-00003"],
    )
    invoice_id: UUID = Field(description="The invoice credited.", examples=[_UUID_EXAMPLE])
    reason: CreditNoteReason = Field(description="Why it was issued.", examples=["pricing_error"])
    currency: CurrencyCode = Field(description="ISO 4217 code, the invoice's.", examples=["USD"])
    lines: list[InvoiceLine] = Field(description="Credited lines, shaped as invoice lines.", examples=[[]])
    total: MoneyStr = Field(description="Sum of lines[].total.", examples=["21.50"])

    @model_validator(mode="after")
    def _reconciles(self) -> Self:
        _check("total", self.total, _sum(x.total for x in self.lines), "sum of lines[].total")
        return self


class Payment(Contract):
    payment_id: UUID = Field(description="Id of the payment.", examples=[_UUID_EXAMPLE])
    invoice_id: UUID = Field(description="The invoice paid.", examples=[_UUID_EXAMPLE])
    amount: NonNegativeDecimalStr = Field(description="Amount received.", examples=["50.00"])
    currency: CurrencyCode = Field(description="ISO 4217 code.", examples=["USD"])
    received_at: Timestamp = Field(description="When it was received.", examples=["2025-02-10T14:00:00Z"])
    method: NonEmptyStr = Field(description="How it was paid.", examples=["bank_transfer", "card"])
    invoice_status: Literal["partially_paid", "paid"] = Field(
        description="The invoice's status after this payment.", examples=["partially_paid", "paid"]
    )


class Refund(Contract):
    refund_id: UUID = Field(description="Id of the refund.", examples=[_UUID_EXAMPLE])
    payment_id: UUID = Field(description="The payment refunded.", examples=[_UUID_EXAMPLE])
    invoice_id: UUID = Field(description="The invoice the payment was for.", examples=[_UUID_EXAMPLE])
    amount: NonNegativeDecimalStr = Field(description="Amount refunded.", examples=["20.00"])
    currency: CurrencyCode = Field(description="ISO 4217 code.", examples=["USD"])
    refunded_at: Timestamp = Field(description="When it was refunded.", examples=["2025-02-12T08:00:00Z"])
    reason: str = Field(description="Why.", examples=["Duplicate payment"])


_PAYLOAD_OF: dict[InvoiceEventType, str] = {
    InvoiceEventType.INVOICE_FINALIZED: "invoice",
    InvoiceEventType.INVOICE_VOIDED: "invoice",
    InvoiceEventType.INVOICE_PAYMENT_RECORDED: "payment",
    InvoiceEventType.INVOICE_REFUND_RECORDED: "refund",
    InvoiceEventType.CREDIT_NOTE_ISSUED: "credit_note",
}


class InvoiceEvent(Contract):
    """Envelope of every `billing.invoices.v1` message; exactly one payload, matching `event_type`."""

    event_id: UUID = Field(description="Unique id; apply each once.", examples=[_UUID_EXAMPLE])
    event_type: InvoiceEventType = Field(description="What happened.", examples=["invoice.finalized"])
    occurred_at: Timestamp = Field(description="When it happened.", examples=["2025-02-01T00:05:00Z"])
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    company_ref: NonEmptyStr = Field(description="The client.", examples=["ACME-001"])
    livemode: bool = Field(description="False for sandbox tenants on a test clock.", examples=[True, False])
    invoice: Invoice | None = Field(
        default=None, description="Set for invoice.finalized / invoice.voided.", examples=[None]
    )
    credit_note: CreditNote | None = Field(default=None, description="Set for credit_note.issued.", examples=[None])
    payment: Payment | None = Field(default=None, description="Set for invoice.payment_recorded.", examples=[None])
    refund: Refund | None = Field(default=None, description="Set for invoice.refund_recorded.", examples=[None])

    @model_validator(mode="after")
    def _one_payload(self) -> Self:
        present = [n for n in ("invoice", "credit_note", "payment", "refund") if getattr(self, n) is not None]
        if len(present) != 1:
            raise ValueError(f"exactly one of invoice, credit_note, payment, refund must be set, got {present}")
        expected = _PAYLOAD_OF[self.event_type]
        if present[0] != expected:
            raise ValueError(f"event_type {self.event_type} carries `{expected}`, got `{present[0]}`")
        return self

    def key(self) -> str:
        """Partition key: ``"<tenant_id>:<company_ref>"``."""
        return message_key(self.tenant_id, self.company_ref)
