"""What the month produced, read back through the APIs: invoices (and their PDFs), notifications, dead letters."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from shared.demo.api import Api, until
from shared.demo.summary import InvoiceView, LineView, Refused, Sent

ISSUED = {"finalized", "sent", "viewed", "partially_paid", "paid", "overdue", "disputed"}


async def invoices_of(api: Api, period_start: date, expected: int) -> list[dict[str, Any]]:
    """The period's invoices once ``expected`` of them are issued (or held: they are reported with the reason)."""

    async def done() -> list[dict[str, Any]] | None:
        rows = await api.json("invoicing", "/v1/invoices", params={"limit": 500})
        rows = rows["items"] if isinstance(rows, dict) else rows
        ours = [r for r in rows if str(r["period_start"]) == period_start.isoformat()]
        ours = [r for r in ours if r["status"] in ISSUED | {"held"}]
        return ours if len(ours) >= expected else None

    return await until(done, what=f"{expected} invoices for the period from {period_start}", timeout_s=240)


async def read_invoice(api: Api, invoice_id: str, out_dir: Path) -> InvoiceView:
    """The invoice as invoicing's API has it; its PDF written to ``out_dir`` once issued."""
    detail = await api.json("invoicing", f"/v1/invoices/{invoice_id}")
    doc = detail.get("document") or {}
    lines = [
        LineView(ln["description"], ln["quantity"], ln.get("unit") or "", ln["unit_price"], ln["amount"],
                 ln["discount_amount"], ln["net_amount"], ln["tax_amount"], ln["total"])
        for ln in doc.get("lines", [])
    ]  # fmt: skip
    taxes = sorted({f"{t['name']} {t['rate']} %" for ln in doc.get("lines", []) for t in ln["taxes"]})
    discounts = sorted({d["name"] for ln in detail["lines"] for d in ln.get("discounts", [])})
    fx = [f"{f['from_currency']}→{f['to_currency']} {f['rate']} ({f['rate_date']})" for f in doc.get("fx", [])]
    number = detail["invoice_number"] or "(not numbered)"
    pdf = None
    if detail["status"] in ISSUED:
        content = (await api.call("invoicing", "GET", f"/v1/invoices/{invoice_id}/pdf")).content
        pdf = str(await asyncio.to_thread(_write, out_dir / f"{number}.pdf", content))
    return InvoiceView(
        client=(doc.get("customer") or {}).get("name", detail["company_ref"]),
        company_ref=detail["company_ref"],
        invoice_id=str(detail["invoice_id"]),
        number=number,
        status=detail["status"],
        currency=doc.get("currency", ""),
        issue_date=str(doc.get("issue_date", "")),
        due_date=str(doc.get("due_date", "")),
        lines=lines,
        subtotal=doc.get("subtotal", ""),
        discount_total=doc.get("discount_total", ""),
        tax_total=doc.get("tax_total", ""),
        total=doc.get("total", ""),
        discounts=discounts,
        taxes=taxes,
        fx=fx,
        pdf=pdf,
        held_reason=detail.get("held_reason"),
    )


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


async def notifications(api: Api, invoices_issued: int) -> list[Sent]:
    """Notification's records, once the invoice emails are sent."""

    async def delivered() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = await api.json("notification", "/v1/notifications", params={"limit": 1000})
        issued = [r for r in rows if r["notification_type"] == "invoice_issued" and r["status"] == "sent"]
        return rows if len(issued) >= invoices_issued else None

    rows = await until(delivered, what="the invoice emails to be sent", timeout_s=120)
    return [Sent(r["notification_type"], r["address"], r["subject"], r["status"]) for r in rows]


async def dead_letters(api: Api) -> list[Refused]:
    """Metering's open dead letters, each refused record once (a refused record claims no id, so a second run
    refuses it again)."""
    letters = (await api.json("metering", "/v1/dead-letters"))["dead_letters"]
    seen: dict[tuple[str, ...], Refused] = {}
    for d in letters:
        topic = "billing.usage.v1" if d["record_type"] == "usage" else "billing.time-entries.v1"
        r = Refused(topic, d.get("source") or "?", d.get("external_id") or "?", d["code"], d.get("field") or "",
                    d["reason"])  # fmt: skip
        seen.setdefault((r.topic, r.source, r.record, r.code), r)
    return list(seen.values())
