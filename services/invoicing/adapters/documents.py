"""Rendered documents: one Jinja2 template (templates/invoice.html.j2) gives the HTML, and fpdf2 lays the
same HTML out as a PDF (pure Python: no system packages). Deterministic: the PDF's creation date is fixed
to the issue date, so the same invoice renders to the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.contracts.invoices import CreditNote, Invoice

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)


def _invoice_context(invoice: Invoice) -> dict[str, Any]:
    taxes = sorted(
        {
            f"{t.name} {t.rate}%" + (f" (exempt: {t.exemption_reason})" if t.exemption_reason else "")
            for line in invoice.lines
            for t in line.taxes
        }
    )
    return {
        "title": "Invoice",
        "number": invoice.invoice_number,
        "customer": invoice.customer,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "reference": None,
        "lines": invoice.lines,
        "taxes": taxes,
        "currency": invoice.currency,
        "totals": [
            ("Subtotal", invoice.subtotal),
            ("Discounts", invoice.discount_total),
            ("Tax", invoice.tax_total),
            ("Total", invoice.total),
            ("Credits applied", invoice.credits_applied),
            ("Paid", invoice.amount_paid),
            ("Amount due", invoice.amount_due),
        ],
        "fx_rows": invoice.fx,
    }


def invoice_html(invoice: Invoice) -> str:
    return _ENV.get_template("invoice.html.j2").render(**_invoice_context(invoice))


def credit_note_html(note: CreditNote, invoice: Invoice) -> str:
    context = _invoice_context(invoice) | {
        "title": "Credit note",
        "number": note.credit_note_number,
        "due_date": None,
        "reference": f"Credits invoice {invoice.invoice_number}; reason: {note.reason.value.replace('_', ' ')}",
        "lines": note.lines,
        "taxes": [],
        "totals": [("Total credited", note.total)],
        "fx_rows": [],
    }
    return _ENV.get_template("invoice.html.j2").render(**context)


def _pdf(html: str, *, title: str, day: Any) -> bytes:
    from fpdf import FPDF  # imported on first use: it is the heaviest import of the service's start

    pdf = FPDF()
    pdf.set_creation_date(datetime.combine(day, time(), tzinfo=UTC))
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    # The core fonts are Latin-1: anything else prints as "?" rather than failing the invoice.
    pdf.write_html(html.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def invoice_pdf(invoice: Invoice, *, company_ref: str = "") -> bytes:
    return _pdf(invoice_html(invoice), title=f"Invoice {invoice.invoice_number}", day=invoice.issue_date)


def credit_note_pdf(note: CreditNote, invoice: Invoice) -> bytes:
    return _pdf(credit_note_html(note, invoice), title=f"Credit note {note.credit_note_number}", day=invoice.issue_date)
