"""A plan line's price changes mid-period: each usage record is charged the price in force on its day."""

from __future__ import annotations

from tests.support.platform import Platform


class TestEffectiveDatedPrices:
    async def test_usage_before_and_after_a_price_change_is_invoiced_at_the_price_of_its_day(
        self, platform: Platform
    ) -> None:
        tenant = await platform.sandbox_tenant(
            plan_line={"custom_rate": "12.50", "prices": [{"effective_from": "2026-01-16", "custom_rate": "15.00"}]}
        )
        await platform.tax_rate(tenant, region="GB", rate="20")
        await platform.send_usage(tenant, platform.usage(tenant, quantity="2", occurred_at="2026-01-10T10:00:00+00:00"))
        await platform.send_usage(tenant, platform.usage(tenant, quantity="3", occurred_at="2026-01-20T10:00:00+00:00"))

        await platform.advance_clock(tenant, "2026-02-01T00:00:00+00:00")
        [event] = await platform.invoices(tenant)

        invoice = event["invoice"]
        assert (invoice["period_start"], invoice["period_end"]) == ("2026-01-01", "2026-02-01")
        lines = sorted((line["unit_price"], line["quantity"], line["amount"]) for line in invoice["lines"])
        assert lines == [("12.50", "2", "25.00"), ("15.00", "3", "45.00")]
        assert invoice["subtotal"] == "70.00"
