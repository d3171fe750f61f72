"""Reading ``invoicing.lifecycle.v1``: invoicing publishes an `InvoiceNotice` (shared/contracts/invoicing.py)
per lifecycle step, carrying the `InvoiceEvent` of the steps that have one and the rendered PDF of finalized
invoices. A bare `InvoiceEvent` (what invoicing published before) and the interim
``{"event", "document": {"filename", "content_base64"}}`` wrapper are still read. All shapes are accepted here
and nowhere else, so the rest of the service sees one thing.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from shared.contracts.invoices import InvoiceEvent
from shared.contracts.invoicing import InvoiceNotice


class NotAnInvoiceEvent(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def invoice_event_of(payload: dict[str, Any]) -> tuple[InvoiceEvent | None, bytes | None, str | None]:
    """The event and, when the payload carries one, the invoice document (PDF bytes and file name).

    A notice of a step without an `InvoiceEvent` (sent, viewed, overdue, held…) gives no event: notification
    keeps its own reminder schedule and has nothing to send for those.

    Accepts a bare `InvoiceEvent`, or ``{"event": InvoiceEvent, "document": {"filename", "content_base64"}}``
    with the document optional. Raises `NotAnInvoiceEvent` (naming the field) for a bad document; the event
    itself is validated by the caller's `InvoiceEvent.model_validate` errors.
    """
    if "notice_type" in payload:
        notice = InvoiceNotice.model_validate(payload)
        if notice.attachment is None:
            return notice.event, None, None
        try:
            content = base64.b64decode(notice.attachment.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotAnInvoiceEvent("attachment.content_base64", f"not base64: {exc}") from exc
        return notice.event, content, notice.attachment.file_name
    if isinstance(payload.get("event"), dict):
        event = InvoiceEvent.model_validate(payload["event"])
        document = payload.get("document")
        if document is None:
            return event, None, None
        if not isinstance(document, dict):
            raise NotAnInvoiceEvent("document", "must be an object with filename and content_base64")
        filename = document.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise NotAnInvoiceEvent("document.filename", "a file name is required")
        try:
            content = base64.b64decode(str(document.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotAnInvoiceEvent("document.content_base64", f"not base64: {exc}") from exc
        if not content:
            raise NotAnInvoiceEvent("document.content_base64", "the document is empty")
        return event, content, filename
    return InvoiceEvent.model_validate(payload), None, None


def overdue_notice_of(payload: dict[str, Any]) -> InvoiceNotice | None:
    """Invoicing's ``invoice.overdue`` notice (it carries no `InvoiceEvent`), else None."""
    if payload.get("notice_type") == "invoice.overdue":
        return InvoiceNotice.model_validate(payload)
    return None
