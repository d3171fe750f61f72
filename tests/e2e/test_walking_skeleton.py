"""One usage record through every stage: metering → rating → invoicing → billing.invoices.v1."""

from __future__ import annotations

from tests.support.platform import Platform, Tenant


class TestWalkingSkeleton:
    async def test_a_usage_record_becomes_a_finalized_invoice_when_the_test_clock_passes_period_end(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3", occurred_at="2026-01-15T10:00:00+00:00"))

        await platform.advance_clock(tenant, "2026-02-01T00:00:00+00:00")
        [event] = await platform.invoices(tenant)

        assert event["event_type"] == "invoice.finalized"
        assert event["livemode"] is False
        invoice = event["invoice"]
        assert invoice["invoice_number"] == "INV-2602-00001"
        assert (invoice["period_start"], invoice["period_end"]) == ("2026-01-01", "2026-02-01")
        assert invoice["currency"] == "GBP"
        [line] = invoice["lines"]
        assert (line["quantity"], line["unit_price"], line["amount"]) == ("3", "12.50", "37.50")
        # 3 x 12.50 = 37.50; VAT 20 % of 37.50 = 7.50; 37.50 + 7.50 = 45.00
        assert (invoice["subtotal"], invoice["tax_total"], invoice["total"], invoice["amount_due"]) == (
            "37.50",
            "7.50",
            "45.00",
            "45.00",
        )
        assert [(t["name"], t["rate"], t["amount"]) for t in line["taxes"]] == [("VAT", "20", "7.50")]
        assert invoice["due_date"] == "2026-03-03"
