"""Users who try to raise themselves, through the public APIs (issue 17): nobody approves their own time."""

from __future__ import annotations

import httpx

from shared.services import service
from tests.e2e.test_metering_ingestion import (
    metering_holds_rules,
    on_the_plan,
    time_entry,
    time_service,
    waiting_request,
)
from tests.support.platform import Platform, Tenant


class TestNobodyApprovesTheirOwnTime:
    async def test_a_manager_posting_16_hours_under_their_own_ref_cannot_approve_them(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        await on_the_plan(platform, tenant, code)
        manager_id, manager = await platform.add_user(tenant, "billing_manager", user_ref="mgr.pat")
        _, colleague = await platform.add_user(tenant, "billing_manager")
        await metering_holds_rules(platform, tenant)
        own_day = time_entry(tenant, code, entry_id="own-16h", user_ref="mgr.pat",
                             start="2026-01-12T06:00:00Z", end="2026-01-12T22:00:00Z")  # fmt: skip
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=60) as metering:
            posted = await metering.post(
                "/v1/time-entries:batch",
                json={"records": [own_day]},
                headers={"Authorization": f"Bearer {manager}"},
            )
        assert posted.status_code == 200, posted.text
        assert posted.json()["results"][0]["state"] == "held"  # 16 h is over the default 8 h rule

        request = await waiting_request(platform, colleague, tenant, "own-16h")
        # the request names who submitted the entry and whose time it is: here both are the manager
        assert (request["requested_by"], request["requested_for"]) == (f"user:{manager_id}", f"user:{manager_id}")
        as_manager = {"Authorization": f"Bearer {manager}"}
        pending = (await platform.approvals.get("/v1/approvals/pending", headers=as_manager)).json()
        assert request["request_id"] not in {p["request_id"] for p in pending}
        refused = await platform.approvals.post(
            f"/v1/approvals/{request['request_id']}/approve", json={"comment": "fine"}, headers=as_manager
        )
        assert refused.status_code == 403, refused.text
        assert "it is yours" in refused.text

    async def test_time_a_psa_sends_for_a_manager_cannot_be_approved_by_them_either(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        await on_the_plan(platform, tenant, code)
        manager_id, manager = await platform.add_user(tenant, "billing_manager", user_ref="mgr.sam")
        _, colleague = await platform.add_user(tenant, "billing_manager")
        await metering_holds_rules(platform, tenant)
        long_day = time_entry(tenant, code, entry_id="psa-12h", user_ref="mgr.sam",
                              start="2026-01-13T06:00:00Z", end="2026-01-13T18:00:00Z")  # fmt: skip
        await platform.publish("billing.time-entries.v1", long_day, key=f"{tenant.tenant_id}:{tenant.company_ref}")

        request = await waiting_request(platform, colleague, tenant, "psa-12h")
        assert (request["requested_by"], request["requested_for"]) == ("source:connectwise", f"user:{manager_id}")
        refused = await platform.approvals.post(
            f"/v1/approvals/{request['request_id']}/approve",
            json={"comment": "fine"},
            headers={"Authorization": f"Bearer {manager}"},
        )
        assert refused.status_code == 403, refused.text
        approved = await platform.approvals.post(
            f"/v1/approvals/{request['request_id']}/approve",
            json={"comment": "onsite"},
            headers={"Authorization": f"Bearer {colleague}"},
        )
        assert approved.status_code == 200, approved.text


class TestTargetsATenantMayNotPointNotificationAt:
    async def test_metadata_private_and_loopback_targets_are_refused_naming_the_field(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        async with httpx.AsyncClient(base_url=platform.stack.url(service("notification")), timeout=30) as api:
            hook = await api.put(
                "/v1/webhook-endpoints/5b0f5a52-1d7e-4c8e-9a0c-3d6f2b1e7a11",
                json={"url": "http://169.254.169.254/latest/meta-data/", "secret": "whsec_0123456789abcdef"},
                headers=tenant.auth,
            )
            smtp = await api.put("/v1/notification-settings", json={"smtp_host": "10.0.0.5"}, headers=tenant.auth)
            sms = await api.put(
                "/v1/notification-settings", json={"sms_url": "http://[fd00:ec2::254]/sms"}, headers=tenant.auth
            )
        assert [(r.status_code, r.json()["detail"][0]["loc"]) for r in (hook, smtp, sms)] == [
            (422, ["body", "url"]),
            (422, ["body", "smtp_host"]),
            (422, ["body", "sms_url"]),
        ]
        assert "is not a public address" in hook.json()["detail"][0]["msg"]

    async def test_settings_the_fuzz_tier_found_answer_422_not_500(self, platform: Platform, tenant: Tenant) -> None:
        async with httpx.AsyncClient(base_url=platform.stack.url(service("notification")), timeout=30) as api:
            hook = await api.put(
                "/v1/webhook-endpoints/5b0f5a52-1d7e-4c8e-9a0c-3d6f2b1e7a13",
                json={"url": "https://-4\u0084]\u00e2_R1", "secret": "whsec_0123456789abcdef"},
                headers=tenant.auth,
            )
            offsets = await api.put(
                "/v1/notification-settings", json={"reminder_offsets": [7, 2**100]}, headers=tenant.auth
            )
        assert [(r.status_code, r.json()["detail"][0]["loc"]) for r in (hook, offsets)] == [
            (422, ["body", "url"]),
            (422, ["body", "reminder_offsets", 1]),
        ]


class TestTenantSecretsAtRest:
    async def test_are_stored_encrypted_and_never_answered(self, platform: Platform, tenant: Tenant) -> None:
        async with httpx.AsyncClient(base_url=platform.stack.url(service("notification")), timeout=30) as api:
            saved = await api.put(
                "/v1/notification-settings",
                json={"smtp_host": "127.0.0.1", "smtp_password": "smtp-p4ssw0rd", "sms_token": "sms-t0ken-123"},
                headers=tenant.auth,
            )
            hook = await api.put(
                "/v1/webhook-endpoints/5b0f5a52-1d7e-4c8e-9a0c-3d6f2b1e7a12",
                json={"url": "http://127.0.0.1:9/hook", "secret": "whsec_do_not_store_me_plain"},
                headers=tenant.auth,
            )
        assert (saved.status_code, hook.status_code) == (200, 200)
        assert "smtp-p4ssw0rd" not in saved.text and "whsec_do_not_store_me_plain" not in hook.text  # noqa: PT018
        assert (saved.json()["smtp_password_set"], saved.json()["sms_token_set"]) == (True, True)
        stored = await platform.fetch_as_tenant("notification", tenant, "SELECT smtp_password, sms_token FROM settings")
        [secret] = await platform.fetch_as_tenant("notification", tenant, "SELECT secret FROM webhook_endpoints")
        values = [*stored[0], secret[0]]
        assert all(v.startswith("v1:") for v in values)
        assert not any(p in v for v in values for p in ("smtp-p4ssw0rd", "sms-t0ken-123", "whsec_do_not_store"))


class TestTechniciansAreScopedToTheirOwnWork:
    async def test_a_technician_reports_their_own_time_only_and_reads_no_invoice(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        code = await time_service(platform, tenant)
        await on_the_plan(platform, tenant, code)
        _, technician = await platform.add_user(tenant, "technician", user_ref="tech.sam")
        await platform.add_user(tenant, "technician", user_ref="tech.jane")
        own = time_entry(tenant, code, entry_id="own-1", user_ref="tech.sam",
                         start="2026-01-12T09:00:00Z", end="2026-01-12T10:00:00Z")  # fmt: skip
        other = time_entry(tenant, code, entry_id="other-1", user_ref="tech.jane",
                           start="2026-01-12T11:00:00Z", end="2026-01-12T12:00:00Z")  # fmt: skip
        as_technician = {"Authorization": f"Bearer {technician}"}

        async def users_known() -> bool:  # metering learns the technicians from catalog's events
            async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=60) as m:
                answer = await m.post("/v1/time-entries:batch", json={"records": [own]}, headers=as_technician)
            return answer.json()["results"][0]["status"] in ("accepted", "duplicate")

        await platform.wait_for(users_known, timeout_s=60)
        async with httpx.AsyncClient(base_url=platform.stack.url(service("metering")), timeout=60) as metering:
            answer = await metering.post("/v1/time-entries:batch", json={"records": [other]}, headers=as_technician)
        [result] = answer.json()["results"]
        assert (result["status"], result["code"], result["field"]) == ("rejected", "not_your_time", "user_ref")
        async with platform.invoicing_api() as invoicing:
            listing = await invoicing.get("/v1/invoices", headers=as_technician)
        assert listing.status_code == 403
