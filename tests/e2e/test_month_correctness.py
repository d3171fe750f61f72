"""Months a new user would bill, through the public interfaces only (issues 16 and 24): counts reported before a
plan starts, a plan change carrying the count across, a Fixed service on two plans, and time-bound discounts
judged on each record's own day. Every figure is worked by hand in the comments (docs/billing-rules.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from shared.services import service
from tests.e2e.test_rating_engine import Client, a_client, add_plan, add_service, invoice_for, lines_of, usage
from tests.support.platform import Platform, Tenant


def snapshot(client: Client, code: str, quantity: str, at: str) -> dict[str, Any]:
    return usage(client, code, quantity, at, kind="snapshot")


def by_service(invoice: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """service_ref -> (quantity, amount) of an invoice whose lines have one line per service."""
    return {ln["service_ref"]: (ln["quantity"], ln["amount"]) for ln in invoice["lines"]}


class TestCountsReportedBeforeThePlanStarts:
    async def test_a_count_of_28_november_is_in_force_from_the_first_day_of_a_plan_starting_1_december(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform, anchor="2026-12-01")
        lines = []
        for code, how in (("rmm-peak", "peak"), ("m365-last", "last"), ("vm-twa", "time_weighted_average")):
            s = await add_service(platform, client, code, "Usage", "2.00", "device")
            await platform.put(
                f"/v1/services/{s}",
                {"service_id": str(s), "code": code, "name": code, "service_type": "Usage", "default_rate": "2.00",
                 "currency": "GBP", "unit": "device", "snapshot_aggregation": how},
                token=client.tenant.token,
            )  # fmt: skip
            lines.append({"service_id": str(s)})
        quiet = await add_service(platform, client, "edr-quiet", "Usage", "2.00", "device")
        lines.append({"service_id": str(quiet)})
        await add_plan(platform, client, "Managed", lines, start="2026-12-01", plan_type="usage-based")
        for code in ("rmm-peak", "m365-last", "vm-twa", "edr-quiet"):  # the RMM's count before the plan starts
            await platform.send_usage(client.tenant, snapshot(client, code, "50", "2026-11-28T10:00:00+00:00"))
        for code in ("rmm-peak", "m365-last", "vm-twa"):  # the next count, on 12 December at midnight
            await platform.send_usage(client.tenant, snapshot(client, code, "45", "2026-12-12T00:00:00+00:00"))

        await platform.advance_clock(client.tenant, "2027-01-01T00:00:00+00:00")
        december = await invoice_for(platform, client, "2026-12-01", "2027-01-01", 1)

        assert by_service(december) == {
            "rmm-peak": ("50", "100.00"),  # peak: the 50 carried in from 1 December beats the 45
            "m365-last": ("45", "90.00"),  # last: the 45 of 12 December
            # (50 x 11 days + 45 x 20 days) / 31 days = 1450 / 31 = 46.774193... -> 46.7742 x 2.00 = 93.5484
            "vm-twa": ("46.7742", "93.55"),
            "edr-quiet": ("50", "100.00"),  # nothing counted in December: the 50 is in force all month
        }

    async def test_a_plan_change_mid_month_carries_the_count_into_the_new_plan(self, platform: Platform) -> None:
        client = await a_client(platform, anchor="2026-11-01")
        vms = await add_service(platform, client, "vm", "Usage", "3.00", "VM")
        await platform.put(
            f"/v1/services/{vms}",
            {"service_id": str(vms), "code": "vm", "name": "Virtual machine", "service_type": "Usage",
             "default_rate": "3.00", "currency": "GBP", "unit": "VM", "snapshot_aggregation": "time_weighted_average"},
            token=client.tenant.token,
        )  # fmt: skip
        await add_plan(platform, client, "Old", [{"service_id": str(vms)}], start="2026-11-01", plan_type="usage-based")
        await add_plan(platform, client, "New", [{"service_id": str(vms), "custom_rate": "4.00"}], start="2026-11-16",
                       plan_type="usage-based")  # fmt: skip
        old = client.assignments["Old"]
        ended = {"assignment_id": str(old), "company_id": str(client.tenant.company_id),
                 "plan_id": str(client.plans["Old"]), "start_date": "2026-11-01", "end_date": "2026-11-16"}  # fmt: skip
        await platform.put(f"/v1/assignments/{old}", ended, token=client.tenant.token)
        await platform.send_usage(client.tenant, snapshot(client, "vm", "40", "2026-11-03T00:00:00+00:00"))
        await platform.send_usage(client.tenant, snapshot(client, "vm", "30", "2026-11-20T00:00:00+00:00"))

        await platform.advance_clock(client.tenant, "2026-12-01T00:00:00+00:00")
        november = await invoice_for(platform, client, "2026-11-01", "2026-12-01", 1)
        # Old, 1-16 Nov (15 days): nothing in force for 2 days, then 40 for 13: 520 / 15 = 34.6667 x 3.00 = 104.0001
        # New, 16 Nov-1 Dec (15 days): 40 carried in for 4 days, 30 for 11: 490 / 15 = 32.6667 x 4.00 = 130.6668
        assert sorted((ln["quantity"], ln["unit_price"], ln["amount"]) for ln in november["lines"]) == [
            ("32.6667", "4.00", "130.67"),
            ("34.6667", "3.00", "104.00"),
        ]

        await platform.advance_clock(client.tenant, "2027-01-01T00:00:00+00:00")
        december = await invoice_for(platform, client, "2026-12-01", "2027-01-01", 2)
        assert lines_of(december) == [("usage", "30", "4.00", "120.00")]  # the 30 in force all December, on New


class TestAFixedServiceOnTwoPlans:
    async def test_each_plan_charges_its_own_fee(self, platform: Platform) -> None:
        client = await a_client(platform, anchor="2026-11-01")
        firewall = await add_service(platform, client, "firewall", "Fixed", "100.00", "month")
        await add_plan(platform, client, "Site A", [{"service_id": str(firewall)}], start="2026-11-01")
        await add_plan(platform, client, "Site B", [{"service_id": str(firewall), "custom_rate": "80.00"}],
                       start="2026-11-01")  # fmt: skip

        await platform.advance_clock(client.tenant, "2026-12-01T00:00:00+00:00")
        november = await invoice_for(platform, client, "2026-11-01", "2026-12-01", 1)
        # two assignments are two contracts: 100.00 on Site A and 80.00 on Site B, 180.00 + VAT 20 % = 216.00
        assert lines_of(november) == [("fixed", "1", "100.00", "100.00"), ("fixed", "1", "80.00", "80.00")]
        assert november["total"] == "216.00"


async def approve_pending_discounts(platform: Platform, tenant: Tenant, discount_ids: list[str]) -> None:
    """Wait for each discount to be approved, approving as a billing manager whatever waits for one."""
    _, manager = await platform.add_user(tenant, "billing_manager")
    async with httpx.AsyncClient(base_url=platform.stack.url(service("approvals")), timeout=60) as approvals:

        async def all_approved() -> bool:
            pending = await approvals.get("/v1/approvals/pending", headers={"Authorization": f"Bearer {manager}"})
            waiting = pending.json() if pending.status_code == 200 else []
            for request in waiting if isinstance(waiting, list) else waiting.get("items", []):
                if request["item_type"] == "discount":
                    await approvals.post(
                        f"/v1/approvals/{request['request_id']}/approve",
                        json={"comment": "agreed"},
                        headers={"Authorization": f"Bearer {manager}"},
                    )
            states = [
                (await platform.catalog.get(f"/v1/discounts/{d}", headers=tenant.auth)).json() for d in discount_ids
            ]
            return all(s["approval_status"] == "approved" for s in states)

        await platform.wait_for(all_approved, timeout_s=90)


class TestATimeBoundDiscountIsJudgedOnEachRecordsOwnDay:
    """Issue 24's reproduction: HELPDESK at 160 USD/h, US-TX 5 %, one hour each; expected totals by hand."""

    async def test_three_clients_with_windows_starting_and_ending_mid_november(self, platform: Platform) -> None:
        t, _, token = await platform.new_tenant(timezone="America/Chicago", currency="USD")
        tenant = Tenant(t, uuid.uuid4(), "r1", "helpdesk", "160.00", "USD", token=token)
        ids = {name: str(uuid.uuid4()) for name in ("svc", "tm", "r1", "r2", "r3", "d1", "d2", "d3")}
        clients = [
            {"company_id": ids[r], "company_ref": r.upper(), "name": f"Client {r.upper()}", "region": "US-TX",
             "currency": "USD", "billing_anchor": "2026-11-01", "billing_email": f"{r}@client.example"}
            for r in ("r1", "r2", "r3")
        ]  # fmt: skip
        document = {
            "services": [{"service_id": ids["svc"], "code": "HELPDESK", "name": "Helpdesk", "service_type": "Time",
                          "default_rate": "160.00", "currency": "USD", "unit": "hour"}],
            "companies": clients,
            "plans": [{"plan_id": ids["tm"], "name": "tm", "plan_type": "time-based", "billing_frequency": "monthly",
                       "currency": "USD", "lines": [{"service_id": ids["svc"]}]}],
            "assignments": [{"assignment_id": str(uuid.uuid4()), "company_id": ids[r], "plan_id": ids["tm"],
                             "start_date": "2026-11-01"} for r in ("r1", "r2", "r3")],
            "discounts": [
                {"discount_id": ids["d1"], "name": "R1 10%", "discount_type": "percentage", "value": "10",
                 "company_id": ids["r1"], "valid_from": "2026-11-16"},
                {"discount_id": ids["d2"], "name": "R2 10%", "discount_type": "percentage", "value": "10",
                 "company_id": ids["r2"], "valid_to": "2026-11-16"},
                {"discount_id": ids["d3"], "name": "R3 10%", "discount_type": "percentage", "value": "10",
                 "company_id": ids["r3"], "valid_to": "2026-11-16"},
            ],
        }  # fmt: skip
        imported = await platform.catalog.post("/v1/catalog/import", json=document, headers=tenant.auth)
        assert imported.status_code == 200, imported.text
        await approve_pending_discounts(platform, tenant, [ids["d1"], ids["d2"], ids["d3"]])
        await platform.tax_rate(tenant, region="US-TX", name="Sales tax", rate="5")
        for ref, day in (("R1", "20"), ("R2", "20"), ("R3", "05")):
            start, end = f"2026-11-{day}T10:00:00-06:00", f"2026-11-{day}T11:00:00-06:00"
            entry = {"entry_id": f"psa-{ref}", "source": "halopsa", "tenant_id": str(t), "company_ref": ref,
                     "service_ref": "HELPDESK", "user_ref": "tech.sam", "start_time": start,
                     "end_time": end}  # fmt: skip
            await platform.publish("billing.time-entries.v1", entry, key=f"{t}:{ref}")

        await platform.advance_clock(tenant, "2026-12-01T00:00:00-06:00")
        events = await platform.invoices(tenant, count=3, timeout_s=90)
        totals = {e["company_ref"]: e["invoice"]["total"] for e in events}
        assert totals == {
            "R1": "151.20",  # 160.00 - 10 % from 16 Nov (the entry is on the 20th) = 144.00 + 5 % = 151.20
            "R2": "168.00",  # the 10 % ended on 16 Nov; the entry is on the 20th: 160.00 + 5 % = 168.00
            "R3": "151.20",  # the 10 % until 16 Nov covers the entry of the 5th: 144.00 + 5 % = 151.20
        }


class TestTheDayAPlanIsInForceIsTheTenants:
    """docs/billing-rules.md §1: metering's "no plan in force" and rating's routing judge the same local day."""

    async def test_a_record_after_local_midnight_of_the_plans_first_day_has_a_plan(self, platform: Platform) -> None:
        t, _, token = await platform.new_tenant(timezone="Asia/Tokyo", currency="GBP")
        client = Client(Tenant(t, uuid.uuid4(), "", "", "0", token=token))
        company = {"company_id": str(client.tenant.company_id), "company_ref": "tokyo-dental", "name": "Tokyo Dental",
                   "billing_email": "ap@tokyo.example", "region": "GB", "currency": "GBP",
                   "billing_anchor": "2026-12-01"}  # fmt: skip
        await platform.put(f"/v1/companies/{client.tenant.company_id}", company, token=token)
        client.tenant.company_ref = "tokyo-dental"
        await platform.tax_rate(client.tenant, region="GB", rate="20")
        await add_service(platform, client, "tickets", "Usage", "5.00", "ticket")
        await add_plan(platform, client, "Helpdesk", [{"service_id": str(client.services["tickets"])}],
                       start="2026-12-01", plan_type="usage-based")  # fmt: skip
        # 16:00 UTC on 30 November is 01:00 on 1 December in Tokyo: the plan is in force
        # as integrators are told to: wait until metering knows the tenant, its zone, the client and the plan
        await platform.wait_ready(token, "metering", company_ref="tokyo-dental")
        after = usage(client, "tickets", "2", "2026-11-30T16:00:00+00:00")
        # 14:00 UTC is 23:00 on 30 November in Tokyo: no plan yet
        before = usage(client, "tickets", "3", "2026-11-30T14:00:00+00:00")
        await platform.send_usage(client.tenant, after)
        await platform.send_usage(client.tenant, before)

        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=60) as metering:

            async def flagged() -> list[str] | None:
                # Eventually: a record that arrives before metering has heard of the plan is flagged, and
                # cleared again when the assignment lands (the flag never changes what is billed).
                response = await metering.get("/v1/without-plan", headers=client.tenant.auth)
                ids = [r["event_id"] for r in response.json()["records"]]
                return ids if ids == [before["event_id"]] else None

            assert await platform.wait_for(flagged, timeout_s=60) == [before["event_id"]]

        await platform.advance_clock(client.tenant, "2027-01-01T00:00:00+09:00")
        december = await invoice_for(platform, client, "2026-12-01", "2027-01-01", 1)
        assert lines_of(december) == [("usage", "2", "5.00", "10.00")]  # rating bills the 1 December record only


class TestWhatWillNotBeBilledIsVisible:
    async def test_rating_lists_parked_records_and_the_preview_names_what_it_leaves_out(
        self, platform: Platform
    ) -> None:
        client = await a_client(platform, anchor="2026-12-01")
        await add_service(platform, client, "tickets", "Usage", "5.00", "ticket")
        await add_service(platform, client, "backup", "Usage", "0.25", "GB")  # in the catalog, on no plan
        await add_plan(platform, client, "Helpdesk", [{"service_id": str(client.services["tickets"])}],
                       start="2026-12-01", plan_type="usage-based")  # fmt: skip
        before_plan = usage(client, "tickets", "4", "2026-11-20T10:00:00+00:00")
        no_line = usage(client, "backup", "100", "2026-12-03T10:00:00+00:00")
        for record in (before_plan, no_line):
            await platform.send_usage(client.tenant, record)
        await platform.advance_clock(client.tenant, "2026-12-05T00:00:00+00:00")

        async def parked() -> list[dict[str, Any]] | None:
            found = (await rating_json(platform, client, "/v1/unrated"))["records"]
            return found if len(found) == 2 else None

        records = {r["external_id"]: r for r in await platform.wait_for(parked, timeout_s=60)}
        assert records[before_plan["event_id"]]["reason"] == (
            f"no active plan of client {client.tenant.company_ref!r} covers service 'tickets' on 2026-11-20"
        )
        assert records[no_line["event_id"]]["reason"] == (
            f"no active plan of client {client.tenant.company_ref!r} covers service 'backup' on 2026-12-03"
        )

        [december] = await rating_json(platform, client, f"/v1/companies/{client.tenant.company_id}/preview")
        # the open period (December) leaves out the backup record of 3 December, and says why; November's is not
        # December's to mention
        assert [(r["external_id"], r["status"]) for r in december["left_out"]] == [
            (no_line["event_id"], "not_billed_yet")
        ]


async def rating_json(platform: Platform, client: Client, path: str) -> Any:
    async with httpx.AsyncClient(base_url=platform.stack.url(service("rating")), timeout=60) as rating:
        response = await rating.get(path, headers=client.tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


class TestALateCountThatBringsAPeriodToNothing:
    async def test_credits_everything_the_period_was_charged(self, platform: Platform) -> None:
        # found by the simulator: the re-priced period had no charges, so no adjustment was made at all
        client = await a_client(platform, anchor="2026-07-01")
        seats = await add_service(platform, client, "m365", "Usage", "2.00", "seat")
        await platform.put(
            f"/v1/services/{seats}",
            {"service_id": str(seats), "code": "m365", "name": "M365 seat", "service_type": "Usage",
             "default_rate": "2.00", "currency": "GBP", "unit": "seat", "snapshot_aggregation": "last"},
            token=client.tenant.token,
        )  # fmt: skip
        line = {"service_id": str(seats), "included_quantity": "10"}
        await add_plan(platform, client, "Seats", [line], start="2026-07-01", plan_type="usage-based")
        await platform.send_usage(client.tenant, snapshot(client, "m365", "15", "2026-07-24T07:16:00+00:00"))
        await platform.advance_clock(client.tenant, "2026-08-01T00:00:00+00:00")
        july = await invoice_for(platform, client, "2026-07-01", "2026-08-01", 1)
        assert lines_of(july) == [("usage", "5", "2.00", "10.00")]  # last 15 - 10 included

        # the portal's later count of the same day, sent after July closed: 10 seats, all included
        await platform.send_usage(client.tenant, snapshot(client, "m365", "10", "2026-07-24T12:05:00+00:00"))
        await platform.advance_clock(client.tenant, "2026-09-01T00:00:00+00:00")
        events = await platform.invoices(client.tenant, count=2, timeout_s=90)
        [note] = [e["credit_note"] for e in events if e["event_type"] == "credit_note.issued"]
        # July is now 0 above what is included: its 10.00 is credited in August (which carries the 10 in and has
        # nothing else to bill), so the negative period is a credit note on July's invoice: 10.00 + VAT 2.00
        assert (note["invoice_id"], note["total"]) == (july["invoice_id"], "12.00")
        assert [(ln["kind"], ln["net_amount"]) for ln in note["lines"]] == [("usage", "10.00")]
