"""``invoicing.lifecycle.v1``: invoice lifecycle notices for notification (internal).

One `InvoiceNotice` per lifecycle step of an invoice or credit note, keyed ``"<tenant_id>:<company_ref>"``
like ``billing.invoices.v1``. Steps that also go to ``billing.invoices.v1`` (finalized, voided, payment and
refund recorded, credit note issued) carry that `InvoiceEvent` unchanged in ``event``. Finalized invoices
and issued credit notes carry their rendered PDF as an attachment (base64), because services never call
each other over HTTP: notification emails it as it is. Messages stay well under 1 MB (the PDF is a page or
two of text).
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from shared.contracts.base import Contract, CurrencyCode, MoneyStr, NonEmptyStr, TenantId, Timestamp, message_key
from shared.contracts.invoices import InvoiceEvent

__all__ = ["Attachment", "InvoiceNotice", "NoticeType"]

_UUID_EXAMPLE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_TENANT_EXAMPLE = "0f8fad5b-d9cb-469f-a165-70867728950e"


class NoticeType(StrEnum):
    FINALIZED = "invoice.finalized"
    SENT = "invoice.sent"
    VIEWED = "invoice.viewed"
    PARTIALLY_PAID = "invoice.partially_paid"
    PAID = "invoice.paid"
    OVERDUE = "invoice.overdue"
    VOIDED = "invoice.voided"
    DISPUTED = "invoice.disputed"
    HELD = "invoice.held"
    CANCELLED = "invoice.cancelled"
    PAYMENT_RECORDED = "invoice.payment_recorded"
    REFUND_RECORDED = "invoice.refund_recorded"
    CREDIT_NOTE_ISSUED = "credit_note.issued"


class Attachment(Contract):
    file_name: NonEmptyStr = Field(description="File name to attach it under.", examples=["INV-2602-00001.pdf"])
    content_type: NonEmptyStr = Field(description="MIME type.", examples=["application/pdf"])
    content_base64: NonEmptyStr = Field(description="The file, base64-encoded.", examples=["JVBERi0xLjMK"])


class InvoiceNotice(Contract):
    notice_id: UUID = Field(description="Unique per invoice and step; apply each once.", examples=[_UUID_EXAMPLE])
    notice_type: NoticeType = Field(description="The lifecycle step.", examples=["invoice.finalized"])
    occurred_at: Timestamp = Field(description="Billing time of the step.", examples=["2026-02-01T00:00:00Z"])
    tenant_id: TenantId = Field(description="The MSP.", examples=[_TENANT_EXAMPLE])
    company_id: UUID = Field(description="The client.", examples=[_UUID_EXAMPLE])
    company_ref: NonEmptyStr = Field(description="The client's reference.", examples=["ACME-001"])
    livemode: bool = Field(description="False for sandbox tenants.", examples=[False])
    invoice_id: UUID = Field(description="The invoice.", examples=[_UUID_EXAMPLE])
    invoice_number: str | None = Field(description="Its number (null while held).", examples=["INV-2602-00001"])
    status: NonEmptyStr = Field(description="The invoice's status after the step.", examples=["finalized"])
    billing_email: str | None = Field(description="Where the client's invoices go.", examples=["ap@acme.example"])
    currency: CurrencyCode | None = Field(description="The invoice currency.", examples=["GBP"])
    amount_due: MoneyStr | None = Field(description="What is left to pay after the step.", examples=["45.00"])
    detail: str | None = Field(default=None, description="A reason (held, disputed) or note.", examples=[None])
    event: InvoiceEvent | None = Field(
        default=None, description="The billing.invoices.v1 event of this step, if it has one.", examples=[None]
    )
    attachment: Attachment | None = Field(
        default=None, description="The rendered PDF, for finalized invoices and credit notes.", examples=[None]
    )

    def key(self) -> str:
        return message_key(self.tenant_id, self.company_ref)
