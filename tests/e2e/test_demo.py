"""`make demo` on the test stack: the same runner the CLI calls, checked against amounts computed by hand
here (never against a recording of its own output), run twice to show a second run bills nothing again.

Seed 000, Integration Tests: "Test that notifications and approvals are integrated seamlessly into billing
workflows" — the long time entries are held, reach the billing manager by email, are approved through the
approvals API, and only then billed; invoices are emailed with their PDFs."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest

from shared.demo import records, scenario
from shared.demo.runner import Endpoints, run_demo
from shared.demo.summary import DemoSummary, InvoiceView, render
from shared.services import SERVICES, service
from shared.stack.stack import Stack

D = Decimal
CENT = D("0.01")


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


# -- the month by hand ---------------------------------------------------------------------------------------
# Acme Dental (GB, GBP), "Managed Services Gold", client discount 10 %, VAT 20 %:
#   managed services platform   1 x 450.00                                    =  450.00
#   managed devices, peak of the daily counts 40 / 41 / 43 / 42 = 43 x 12.50    =  537.50
#   M365 seats, last weekly count (24, 25, 27, 26) = 26 x 9.80                  =  254.80
#   Security pack bundle        1 x 99.00 (its EDR and email security: not billed again) =   99.00
#   backup storage (unmapped for the first 14 days, then mapped): 14 x 35 + 14 x 45 = 490 + 630
#                               = 1120 GB x 0.25                               =  280.00
#   subtotal 450.00 + 537.50 + 254.80 + 99.00 + 280.00                         = 1621.30
#   discount 10 % of 1621.30 = 162.13, per line 45.00 + 53.75 + 25.48 + 9.90 + 28.00 = 162.13
#   VAT 20 % per line on the nets 405.00, 483.75, 229.32, 89.10, 252.00
#       = 81.00 + 96.75 + 45.864 -> 45.86 + 17.82 + 50.40                      =  291.83
#   total 1621.30 - 162.13 + 291.83                                            = 1751.00
ACME = {
    # description: (quantity, unit price, amount, discount, VAT)
    "Managed services platform": ("1", "450.00", "450.00", "45.00", "81.00"),
    "Managed device": ("43", "12.50", "537.50", "53.75", "96.75"),
    "Microsoft 365 seat": ("26", "9.80", "254.80", "25.48", "45.86"),
    "Security pack": ("1", "99.00", "99.00", "9.90", "17.82"),
    "Cloud backup storage": ("1120", "0.25", "280.00", "28.00", "50.40"),
}
ACME_TOTALS = ("GBP", "1621.30", "162.13", "291.83", "1751.00")

# Birch & Co (GB, GBP), time and materials, 15-minute increments, VAT 20 %:
#   remote support, minutes 50->60, 30, 45, 90, 20->30, 75, 60, 40->45, 15, 120 (the 60-minute runbook is
#   non-billable) = 570 min = 9.5 h x 95.00                                    =  902.50
#   onsite engineer 180 + 240 + 570 (held, approved) + 600 (held, approved) = 1590 min = 26.5 h x 125.00
#                                                                              = 3312.50
#   VAT 902.50 x 20 % = 180.50; 3312.50 x 20 % = 662.50                         =  843.00
#   total 902.50 + 3312.50 + 843.00                                            = 5058.00
BIRCH = {
    "Remote support": ("9.5", "95.00", "902.50", "0.00", "180.50"),
    "Onsite engineer": ("26.5", "125.00", "3312.50", "0.00", "662.50"),
}
BIRCH_TOTALS = ("GBP", "4215.00", "0.00", "843.00", "5058.00")

# Cedar Logistics (IE, invoiced in EUR at 1.15 EUR per GBP), retainer of 10 h a week, at most 5 h carried,
# overage 110.00 GBP an hour, VAT 23 %:
#   week 1: 2 + 4 = 6 h of 10; 4 h carried                 week 2: 4 + 5 + 3 = 12 h of 10 + 4; 2 h carried
#   week 3: 6 + 7 = 13 h of 10 + 2 = 1 h over               week 4: 8 + 7 = 15 h of 10 = 5 h over
#   retainer fee 1600.00 GBP x 1.15                                            = 1840.00 EUR
#   overage (1 + 5) = 6 h x 110.00 GBP = 660.00 GBP x 1.15 (126.50 EUR an hour) =  759.00 EUR
#   VAT 1840.00 x 23 % = 423.20; 759.00 x 23 % = 174.57                         =  597.77
#   total 1840.00 + 759.00 + 597.77                                            = 3196.77 EUR
CEDAR = {
    "Support retainer (40 hours)": ("1", "1840.00", "1840.00", "0.00", "423.20"),
    "Retainer support (hours beyond the bucket)": ("6", "126.50", "759.00", "0.00", "174.57"),
}
CEDAR_TOTALS = ("EUR", "2599.00", "0.00", "597.77", "3196.77")


def test_the_hand_computed_month_adds_up() -> None:
    """The sums above, recomputed from the demo's own record definitions (so the comments cannot drift)."""
    days = range(1, 29)
    assert max(records.device_count(d) for d in days) == 43
    assert records.SEATS[max(records.SEATS)] == 26
    assert sum(records.BACKUP_GB[1 if d <= 14 else 2] for d in days) == 1120

    def hours(code: str) -> Decimal:
        billable = [e for e in records.BIRCH if e.service_ref == code and e.billable]
        return D(sum(-(-e.minutes // 15) * 15 for e in billable)) / 60

    assert (hours("remote-support"), hours("onsite-engineer")) == (D("9.5"), D("26.5"))
    assert cents(D("1621.30") * D("0.10")) == D("162.13")
    assert cents(D("229.32") * D("0.20")) == D("45.86")
    assert cents(D("759.00") * D("0.23")) == D("174.57")
    weeks = [sum(e.minutes for e in records.CEDAR if 7 * w < e.day <= 7 * (w + 1)) / 60 for w in range(4)]
    assert weeks == [6, 12, 13, 15]


# -- the demo on the test stack ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def runs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, DemoSummary]:
    endpoints = Endpoints({s.name: stack.url(s) for s in SERVICES}, stack.bootstrap, stack.admin_token)
    out = tmp_path_factory.mktemp("demo-invoices")
    first = await run_demo(endpoints, scenario.load(), out_dir=out, say=lambda _: None)
    second = await run_demo(endpoints, scenario.load(), out_dir=out, say=lambda _: None)
    return first, second


def by_client(summary: DemoSummary) -> dict[str, InvoiceView]:
    return {inv.company_ref: inv for inv in summary.invoices}


@pytest.mark.parametrize(
    ("client", "lines", "totals"),
    [("acme-dental", ACME, ACME_TOTALS), ("birch-law", BIRCH, BIRCH_TOTALS), ("cedar-logistics", CEDAR, CEDAR_TOTALS)],
)
async def test_every_printed_figure_matches_the_hand_computed_invoice(
    runs: tuple[DemoSummary, ...], client: str, lines: dict[str, tuple[str, ...]], totals: tuple[str, ...]
) -> None:
    first, _ = runs
    invoice = by_client(first)[client]
    printed = render(first)

    got = {ln.description: (ln.quantity, ln.unit_price, ln.amount, ln.discount, ln.tax) for ln in invoice.lines}
    assert {k: (D(v[0]), D(v[1]), *v[2:]) for k, v in got.items()} == {
        k: (D(v[0]), D(v[1]), *v[2:]) for k, v in lines.items()
    }
    assert (invoice.currency, invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == totals
    assert invoice.status == "finalized"
    assert invoice.number.startswith("INV-2603-")  # issued on the closing tick, 2026-03-01
    block = printed.split(f"— {invoice.number}  finalized  {totals[0]}")[1].split("\n\n")[0].splitlines()
    for description, (quantity, unit_price, amount, discount, tax) in lines.items():
        [row] = [r for r in block if r.strip().startswith(description[:44])]
        # after the 44-character description: quantity [unit], unit price, amount, discount, tax — the hand figures
        figures = row[2 + 44 :].split()
        assert D(figures[0]) == D(quantity), row
        assert D(figures[-4]) == D(unit_price), row  # a unit price may carry extra precision (1840.0000)
        assert figures[-3:] == [amount, discount, tax], row
    currency, subtotal, discount_total, tax_total, total = totals
    printed_totals = {
        r.split()[0]: r.split()[-1] for r in block if r.split()[:1] in (["subtotal"], ["discounts"], ["tax"])
    }
    assert printed_totals == {"subtotal": subtotal, "discounts": f"-{discount_total}", "tax": tax_total}
    [total_row] = [r for r in block if r.strip().startswith(f"TOTAL {currency}")]
    assert total_row.split()[-1] == total


async def test_the_euro_client_shows_its_conversion_and_the_two_tax_regions_their_rates(
    runs: tuple[DemoSummary, ...],
) -> None:
    invoices = by_client(runs[0])
    assert invoices["cedar-logistics"].fx == ["GBP→EUR 1.15 (2026-02-01)"]
    assert [invoices[c].taxes for c in ("acme-dental", "birch-law", "cedar-logistics")] == [
        ["VAT 20 %"],
        ["VAT 20 %"],
        ["VAT 23 %"],
    ]
    assert invoices["acme-dental"].discounts == ["Loyalty 10%"]


async def test_dead_lettered_records_are_reported_with_their_reasons(runs: tuple[DemoSummary, ...]) -> None:
    first, second = runs
    refused = {(r.topic, r.record, r.code, r.field) for r in first.dead_letters}
    assert refused == {
        ("billing.usage.v1", "script-dev-07", "wrong_type", "quantity"),  # a count sent as a JSON number
        ("billing.time-entries.v1", "cw-1099", "end_not_after_start", "end_time"),  # ends before it starts
    }
    assert (first.published, first.duplicates, first.malformed) == (89, 3, 2)  # 28 + 28 + 4 + 24 + 3 + 2
    assert first.unmapped == 14
    assert first.unmapped_reason == "unknown_service"
    assert {(r.record, r.code) for r in second.dead_letters} == {(r, c) for _, r, c, _ in refused}


async def test_notifications_and_approvals_are_integrated_seamlessly_into_billing_workflows(
    runs: tuple[DemoSummary, ...],
) -> None:
    first, _ = runs
    # held: the two onsite days over the 8-hour rule, approved by the billing manager through the API
    assert sorted((h.value, h.status, h.decided_by) for h in first.held) == [
        ("10", "approved", "Morgan Lee (billing manager)"),
        ("9.5", "approved", "Morgan Lee (billing manager)"),
    ]
    # ... and only then billed: 26.5 onsite hours = 3 + 4 + 9.5 + 10 (without them it would be 7)
    [onsite] = [ln for ln in by_client(first)["birch-law"].lines if ln.description == "Onsite engineer"]
    assert D(onsite.quantity) == D(3) + D(4) + D("9.5") + D(10)
    # the approver was told by email, and each client's billing address got its invoice with the PDF
    mails = first.mails_received
    assert sum(m.startswith("morgan@northwind.example: Approval needed") for m in mails) == 2
    for inv, address in zip(
        sorted(first.invoices, key=lambda i: i.company_ref),
        ["ap@acme-dental.example", "accounts@birch-law.example", "finance@cedar-logistics.example"],
        strict=True,
    ):
        assert f"{address}: Invoice {inv.number} from Northwind IT [{inv.number}.pdf]" in mails
    # the retainer's overage alerts reached the client's billing address (it gets the 100 % alerts; the 80 %
    # warnings go to a client's contacts, and the demo's clients have none). Levels are fractions of each week's
    # hours available, 10 + rolled in:
    #   week 1: 6 of 10 = 60 %                        week 2: 12 of 10 + 4 = 14 = 85.7 %: no 100 % alert
    #   week 3: 13 of 10 + 2 = 12 = 108 %: 100 %      week 4: 15 of 10 + 0 = 10 = 150 %: 100 %
    # (measured against the 10 h allocation alone, week 2's 12 h would have been a third, false alert)
    assert any(m.startswith("finance@cedar-logistics.example: Usage alert") for m in mails)
    alerts = [n for n in first.notifications if n.address == "finance@cedar-logistics.example"]
    assert [(n.kind, n.subject) for n in alerts if n.kind in ("bucket_threshold", "overage_alert")] == [
        ("overage_alert", "Usage alert: 100% of your support hours bucket used")
    ] * 2  # weeks 3 and 4
    sent = {(n.kind, n.address) for n in first.notifications if n.status == "sent"}
    assert ("invoice_issued", "ap@acme-dental.example") in sent
    assert ("approval_requested", "morgan@northwind.example") in sent


async def test_the_pdfs_are_written_where_the_summary_says(runs: tuple[DemoSummary, ...]) -> None:
    for inv in runs[0].invoices:
        assert inv.pdf is not None
        assert (await asyncio.to_thread(Path(inv.pdf).read_bytes)).startswith(b"%PDF")
        assert f"PDF: {inv.pdf}" in render(runs[0])


async def test_a_second_run_creates_no_duplicate_invoices_and_reports_the_existing_ones(
    runs: tuple[DemoSummary, ...], stack: Stack
) -> None:
    first, second = runs
    assert (first.month_closed_now, second.month_closed_now) == (True, False)
    assert [(i.invoice_id, i.number, i.total) for i in second.invoices] == [
        (i.invoice_id, i.number, i.total) for i in first.invoices
    ]
    assert not any("Invoice INV-" in m for m in second.mails_received)  # nothing issued, nothing sent again
    operator = {"Authorization": f"Bearer {stack.admin_token}"}
    async with httpx.AsyncClient(base_url=stack.url(service("catalog")), timeout=60) as catalog:
        key = await catalog.post(
            f"/v1/tenants/{first.tenant_id}/admin-keys",
            json={"email": "it@northwind.example", "name": "Northwind admin"},
            headers=operator,
        )
        token = (await catalog.post("/v1/auth/token", json={"api_key": key.json()["api_key"]})).json()
    async with httpx.AsyncClient(base_url=stack.url(service("invoicing")), timeout=60) as invoicing:
        listed = (
            await invoicing.get("/v1/invoices", headers={"Authorization": f"Bearer {token['access_token']}"})
        ).json()
    rows = listed["items"] if isinstance(listed, dict) else listed
    assert sorted(r["invoice_number"] for r in rows) == ["INV-2603-00001", "INV-2603-00002", "INV-2603-00003"]
