"""Rendered documents from one document context (`_invoice_context`): the Jinja2 template
(templates/invoice.html.j2) gives the HTML, and fpdf2 lays the same context out as a PDF in `_pdf` — the same
sections in the same order (pure Python: no system packages). Deterministic: the PDF's creation date is fixed
to the issue date, so the same invoice renders to the same bytes.

The PDF is laid out with fpdf2's cells rather than by feeding it the HTML (``write_html``): the HTML route spent
~85 ms an invoice in fpdf2's table layout, most of an invoice's cost in the invoice run; cells take ~4 ms."""

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
    return _ENV.get_template("invoice.html.j2").render(**_credit_note_context(note, invoice))


def _credit_note_context(note: CreditNote, invoice: Invoice) -> dict[str, Any]:
    return _invoice_context(invoice) | {
        "title": "Credit note",
        "number": note.credit_note_number,
        "due_date": None,
        "reference": f"Credits invoice {invoice.invoice_number}; reason: {note.reason.value.replace('_', ' ')}",
        "lines": note.lines,
        "taxes": [],
        "totals": [("Total credited", note.total)],
        "fx_rows": [],
    }


_COLUMNS = (
    ("Description", 76.0),
    ("Qty", 19.0),
    ("Unit price", 23.0),
    ("Discount", 23.0),
    ("Tax", 23.0),
    ("Total", 26.0),
)
_ROW = 6.0


def _latin1(value: object) -> str:
    # The core fonts are Latin-1: anything else prints as "?" rather than failing the invoice.
    return str(value).encode("latin-1", "replace").decode("latin-1")


def _pdf(context: dict[str, Any], *, title: str, day: Any) -> bytes:
    from fpdf import FPDF  # imported on first use: it is the heaviest import of the service's start

    pdf = FPDF()
    pdf.set_creation_date(datetime.combine(day, time(), tzinfo=UTC))
    pdf.set_title(title)
    pdf.add_page()

    def line(text: object, *, bold: bool = False, size: int = 10) -> None:
        pdf.set_font("Helvetica", style="B" if bold else "", size=size)
        pdf.cell(0, _ROW if size <= 10 else 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    line(f"{context['title']} {context['number'] or ''}".strip(), bold=True, size=14)
    customer = context["customer"]
    line(customer.name, bold=True)
    line(customer.billing_email)
    line(f"Region: {customer.region}")
    if customer.tax_id:
        line(f"Tax id: {customer.tax_id}")
    pdf.ln(2)
    line(f"Issued: {context['issue_date']}")
    if context["due_date"]:
        line(f"Due: {context['due_date']}")
    if context["period_start"]:
        line(f"Period: {context['period_start']} to {context['period_end']} (exclusive)")
    if context["reference"]:
        line(context["reference"])
    pdf.ln(2)
    pdf.set_font("Helvetica", style="B", size=10)
    for name, width in _COLUMNS:
        pdf.cell(width, _ROW, name, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    for item in context["lines"]:
        values = (item.description, item.quantity, item.unit_price, item.discount_amount, item.tax_amount, item.total)
        description = _latin1(values[0])
        rows = 1
        if pdf.get_string_width(description) > _COLUMNS[0][1] - 2 * pdf.c_margin:  # wraps: the row grows with it
            wrapped = pdf.multi_cell(_COLUMNS[0][1], _ROW, description, dry_run=True, output="LINES")
            rows = max(1, len(wrapped)) if isinstance(wrapped, list) else 1
        height = _ROW * rows
        x, y = pdf.get_x(), pdf.get_y()
        if rows > 1:
            pdf.multi_cell(_COLUMNS[0][1], _ROW, description)
            pdf.set_xy(x + _COLUMNS[0][1], y)
        else:
            pdf.cell(_COLUMNS[0][1], height, description)
        for (_, width), value in zip(_COLUMNS[1:], values[1:], strict=True):
            pdf.cell(width, height, _latin1(value))
        pdf.ln(height)
    pdf.ln(2)
    for tax in context["taxes"]:
        line(tax)
    for label, value in context["totals"]:
        pdf.set_font("Helvetica", style="B" if label in ("Total", "Amount due", "Total credited") else "", size=10)
        pdf.cell(60, _ROW, _latin1(label))
        pdf.cell(40, _ROW, _latin1(f"{value} {context['currency']}"), new_x="LMARGIN", new_y="NEXT")
    for fx in context["fx_rows"]:
        line(f"Converted {fx.from_currency} to {fx.to_currency} at {fx.rate} (rate of {fx.rate_date})")
    return bytes(pdf.output())


def invoice_pdf(invoice: Invoice, *, company_ref: str = "") -> bytes:
    return _pdf(_invoice_context(invoice), title=f"Invoice {invoice.invoice_number}", day=invoice.issue_date)


def credit_note_pdf(note: CreditNote, invoice: Invoice) -> bytes:
    return _pdf(
        _credit_note_context(note, invoice), title=f"Credit note {note.credit_note_number}", day=invoice.issue_date
    )
