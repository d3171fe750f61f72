"""Invoicing use cases, each inside the kernel's batch transaction (consumers) or its own (HTTP).

By topic: ``build`` (charges → draft → tax-currency → finalized), ``lifecycle`` (retry, cancel, sent /
viewed / disputed, void, overdue), ``payments`` (payments, refunds), ``credit_notes``, ``billing_adjustments``,
``approvals`` (the gate: record, and ask for approval when a rule is crossed), ``decisions`` (approvals'
answers), ``reading`` (lists, drill-down, PDFs, account, preview), ``settings`` (tax-inclusive prices);
``common`` what they share.
"""

from services.invoicing.use_cases.approvals import keep_rule_sets
from services.invoicing.use_cases.billing_adjustments import adjustments, create_adjustment
from services.invoicing.use_cases.build import project_catalog, take_rating_events, take_tax_results
from services.invoicing.use_cases.common import NotFound, Refused
from services.invoicing.use_cases.credit_notes import cancel_credit_note, create_credit_note, issue_credit_note
from services.invoicing.use_cases.decisions import apply_decisions
from services.invoicing.use_cases.lifecycle import (
    cancel_draft,
    issue_link,
    mark,
    open_document,
    open_link,
    retry_held,
    take_ticks,
    void,
)
from services.invoicing.use_cases.payments import record_payment, request_refund, settle_payment
from services.invoicing.use_cases.reading import account, invoice_detail, invoice_pdf_bytes, list_invoices, preview
from services.invoicing.use_cases.settings import set_tax_inclusive, tax_settings

__all__ = [
    "NotFound",
    "Refused",
    "account",
    "adjustments",
    "apply_decisions",
    "cancel_credit_note",
    "cancel_draft",
    "create_adjustment",
    "create_credit_note",
    "invoice_detail",
    "invoice_pdf_bytes",
    "issue_credit_note",
    "issue_link",
    "keep_rule_sets",
    "list_invoices",
    "mark",
    "open_document",
    "open_link",
    "preview",
    "project_catalog",
    "record_payment",
    "request_refund",
    "retry_held",
    "set_tax_inclusive",
    "settle_payment",
    "take_rating_events",
    "take_tax_results",
    "take_ticks",
    "tax_settings",
    "void",
]
