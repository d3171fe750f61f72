"""What the demo found, as data (``DemoSummary``, which the runner returns and tests check) and as text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineView:
    description: str
    quantity: str
    unit: str
    unit_price: str
    amount: str
    discount: str
    net: str
    tax: str
    total: str


@dataclass(frozen=True)
class InvoiceView:
    client: str
    company_ref: str
    invoice_id: str
    number: str
    status: str
    currency: str
    issue_date: str
    due_date: str
    lines: list[LineView]
    subtotal: str
    discount_total: str
    tax_total: str
    total: str
    discounts: list[str]
    taxes: list[str]  # "VAT 20 %" as printed on the lines
    fx: list[str]  # "GBP→EUR 1.15 (2026-02-01)"
    pdf: str | None
    held_reason: str | None = None


@dataclass(frozen=True)
class Refused:
    """A dead-lettered record: which, where, and why."""

    topic: str
    source: str
    record: str
    code: str
    field: str
    reason: str


@dataclass(frozen=True)
class Held:
    """A record an approval rule held, and what became of it."""

    item: str
    summary: str
    value: str
    status: str
    decided_by: str


@dataclass(frozen=True)
class Sent:
    kind: str
    address: str
    subject: str
    status: str


@dataclass
class DemoSummary:
    tenant_id: str
    msp: str
    month: str
    published: int = 0
    duplicates: int = 0
    malformed: int = 0
    unmapped: int = 0  # records waiting for the service added midway, when the catalog gained it
    unmapped_reason: str = ""
    month_closed_now: bool = False  # False on a second run: the month had been closed before
    invoices: list[InvoiceView] = field(default_factory=list)
    dead_letters: list[Refused] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    notifications: list[Sent] = field(default_factory=list)
    mails_received: list[str] = field(default_factory=list)
    pdf_dir: str = ""
    api_key: str = ""  # an admin key of the demo MSP, made for this run, to explore its APIs
    urls: dict[str, str] = field(default_factory=dict)


def _money(text: str) -> str:
    return f"{text:>10}"


def render(s: DemoSummary) -> str:
    out = [f"\n{s.msp} — billing month {s.month} (tenant {s.tenant_id}, sandbox)\n"]
    out.append(
        f"Published {s.published} records on billing.usage.v1 and billing.time-entries.v1, "
        f"{s.duplicates} of them duplicates and {s.malformed} malformed."
    )
    if s.unmapped:
        out.append(
            f"{s.unmapped} backup records arrived before their service existed ({s.unmapped_reason}); "
            "they were billed once the catalog gained it midway."
        )
    if not s.month_closed_now:
        out.append("An earlier run had closed the month: every record was a duplicate, and these are its invoices.")
    for inv in s.invoices:
        out.append(f"\n{inv.client} ({inv.company_ref}) — {inv.number}  {inv.status}  {inv.currency}")
        out.append(
            f"  issued {inv.issue_date}, due {inv.due_date}" + (f"; held: {inv.held_reason}" if inv.held_reason else "")
        )
        out.append(f"  {'line':<44} {'qty':>8} {'unit price':>11} {'amount':>10} {'discount':>10} {'tax':>10}")
        for ln in inv.lines:
            qty = f"{ln.quantity} {ln.unit}".strip()
            out.append(
                f"  {ln.description[:44]:<44} {qty:>8} {ln.unit_price:>11} {_money(ln.amount)} "
                f"{_money(ln.discount)} {_money(ln.tax)}"
            )
        out.append(f"  {'subtotal':<44} {'':>8} {'':>11} {_money(inv.subtotal)}")
        out.append(
            f"  {'discounts':<44} {', '.join(inv.discounts)[:20] or 'none':>20} {_money('-' + inv.discount_total)}"
        )
        out.append(f"  {'tax':<44} {', '.join(inv.taxes)[:20]:>20} {_money(inv.tax_total)}")
        out.append(f"  {'TOTAL ' + inv.currency:<44} {'':>8} {'':>11} {_money(inv.total)}")
        if inv.fx:
            out.append(f"  converted: {'; '.join(inv.fx)}")
        if inv.pdf:
            out.append(f"  PDF: {inv.pdf}")
    out.append("\nDead-lettered (metering refused them; each is on <topic>.dlq with the reason):")
    out += [f"  {r.topic}  {r.source}/{r.record}  {r.code} ({r.field}): {r.reason}" for r in s.dead_letters] or [
        "  none"
    ]
    out.append("\nHeld for approval (time entries over 8 hours), then decided through the approvals API:")
    out += [f"  {h.summary}: {h.status} by {h.decided_by}" for h in s.held] or ["  none"]
    out.append("\nNotifications (notification service records):")
    out += [f"  {n.kind:<20} {n.address:<34} {n.status:<8} {n.subject}" for n in s.notifications] or ["  none"]
    out.append(f"\nThe local mail sink received {len(s.mails_received)} message(s) in this run:")
    out += [f"  {m}" for m in s.mails_received]
    if s.urls:
        out.append("\nExplore (OpenAPI at <url>/docs, AsyncAPI at <url>/asyncapi):")
        out += [f"  {name:<14} {url}" for name, url in s.urls.items()]
        out.append(f"  admin API key  {s.api_key}  (POST {s.urls.get('catalog', '')}/v1/auth/token for a token)")
        if "dashboard" in s.urls:
            out.append(f"  sign in to the dashboard at {s.urls['dashboard']} with that key")
    return "\n".join(out) + "\n"
