"""Approval workflows against the running platform (seed 000: "Approval Workflows Tests").

Discounts are requested by the real catalog. Time entries and credits are requested here, on
approvals.requests.v1, exactly as metering and invoicing request them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.platform import Platform, Tenant

T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def time_entry_request(tenant: Tenant, hours: str, **changes: Any) -> dict[str, Any]:
    entry = f"cw-time-{uuid.uuid4().hex[:8]}"
    return {
        "request_id": str(uuid.uuid4()),
        "tenant_id": str(tenant.tenant_id),
        "item_type": "time_entry",
        "item_id": entry,
        "company_ref": tenant.company_ref,
        "requesting_service": "metering",
        "requested_by": "tech.jane",
        "trigger_field": "hours",
        "trigger_value": hours,
        "summary": f"{hours} h by tech.jane on T-20931 ({tenant.company_ref})",
        "requested_at": T0.isoformat(),
        "details": {"ticket": "T-20931"},
    } | changes


async def request_approval(platform: Platform, request: dict[str, Any]) -> None:
    key = f"{request['tenant_id']}:{request['item_type']}:{request['item_id']}"
    await platform.publish("approvals.requests.v1", request, key=key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def opened(platform: Platform, token: str, request_id: str) -> dict[str, Any]:
    """The request once approvals has taken it."""

    async def found() -> dict[str, Any] | None:
        response = await platform.approvals.get(f"/v1/approvals/{request_id}", headers=bearer(token))
        return response.json() if response.status_code == 200 else None

    result: dict[str, Any] = await platform.wait_for(found, timeout_s=60)
    return result


async def decisions(
    platform: Platform, request_id: str, *, count: int = 1, settle_s: float = 0.0, timeout_s: float = 60.0
) -> list[Any]:
    return await platform.messages(
        "approvals.decisions.v1",
        where=lambda d: d["request_id"] == request_id,
        count=count,
        settle_s=settle_s,
        timeout_s=timeout_s,
    )


async def notices(platform: Platform, request_id: str, *, count: int = 1, settle_s: float = 0.0) -> list[Any]:
    return await platform.messages(
        "approvals.pending.v1", where=lambda d: d["request_id"] == request_id, count=count, settle_s=settle_s
    )


async def decide(
    platform: Platform, token: str, request_id: str, verb: str = "approve", **body: Any
) -> tuple[int, Any]:
    response = await platform.approvals.post(f"/v1/approvals/{request_id}/{verb}", json=body, headers=bearer(token))
    return response.status_code, response.json()


async def save_discount(
    platform: Platform, tenant: Tenant, percent: str, *, name: str, token: str
) -> tuple[str, dict[str, Any]]:
    """A percentage discount on the tenant's plan, saved in catalog by ``token``'s user."""
    plan_id = (await platform.catalog.get("/v1/plans", headers=tenant.auth)).json()["items"][0]["plan_id"]
    discount_id = str(uuid.uuid4())
    body = {
        "discount_id": discount_id,
        "name": name,
        "discount_type": "percentage",
        "value": percent,
        "plan_id": plan_id,
    }
    return discount_id, await platform.put(f"/v1/discounts/{discount_id}", body, token=token)


async def catalog_has_rules(platform: Platform, tenant: Tenant, *, version: int = 1) -> None:
    async def held() -> bool:
        found = await platform.value_as_tenant("catalog", tenant, "SELECT version FROM approval_rules")
        return found is not None and found >= version

    await platform.wait_for(held, timeout_s=60)


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    return await platform.sandbox_tenant()


@pytest.fixture
async def manager(platform: Platform, tenant: Tenant) -> tuple[uuid.UUID, str]:
    return await platform.add_user(tenant, "billing_manager")


class TestRulesArePublishedSoRequestersKnowWhatToHold:
    async def test_a_new_tenant_gets_the_documented_defaults_and_catalog_holds_them(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        [published] = await platform.messages(
            "approvals.rules.v1", where=lambda d: d["tenant_id"] == str(tenant.tenant_id)
        )
        held = {(r["item_type"], r["threshold_field"]): r for r in published["rules"] if r["active"]}
        assert held["time_entry", "hours"]["threshold"] == "8"
        assert held["discount", "percentage"]["threshold"] == "20"
        assert [s["roles"] for s in held["credit", "amount"]["steps"]] == [["billing_manager"], ["admin"]]
        await catalog_has_rules(platform, tenant)

    async def test_an_admin_edits_a_rule_and_the_new_set_reaches_catalog(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        await catalog_has_rules(platform, tenant)
        rule_id = str(uuid.uuid4())
        body = {
            "item_type": "discount",
            "threshold_field": "percentage",
            "threshold": "10",
            "steps": [{"step": 1, "roles": ["billing_manager"], "timeout_hours": 24, "on_timeout": "reject"}],
        }
        refused = await platform.approvals.put(f"/v1/approval-rules/{rule_id}", json=body, headers=bearer(manager[1]))
        assert refused.status_code == 403
        assert refused.json()["detail"] == "role 'billing_manager' may not approvals:manage"

        saved = await platform.approvals.put(f"/v1/approval-rules/{rule_id}", json=body, headers=tenant.auth)
        assert saved.status_code == 200, saved.text
        assert saved.json()["changed"] is True
        again = await platform.approvals.put(f"/v1/approval-rules/{rule_id}", json=body, headers=tenant.auth)
        assert again.json()["changed"] is False
        current = (await platform.approvals.get("/v1/approval-rules", headers=tenant.auth)).json()
        assert current["version"] == 2
        await catalog_has_rules(platform, tenant, version=2)

        _, twelve = await save_discount(platform, tenant, "12", name="12%", token=tenant.token)
        assert twelve["event"]["state"]["approval_status"] == "pending"  # 12 % > the new 10 % threshold

    async def test_a_rule_that_does_not_make_sense_is_refused_naming_the_field(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        body = {
            "item_type": "time_entry",
            "threshold_field": "amount",
            "threshold": "8",
            "steps": [{"step": 1, "roles": ["technician"]}],
        }
        response = await platform.approvals.put(f"/v1/approval-rules/{uuid.uuid4()}", json=body, headers=tenant.auth)
        assert response.status_code == 422
        assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
            ("body", "threshold_field"),
            ("body", "steps", "0", "roles"),
        }

    async def test_steps_not_numbered_one_to_n_are_a_422_not_a_500(self, platform: Platform, tenant: Tenant) -> None:
        body = {"item_type": "time_entry", "threshold_field": "hours", "threshold": "8",
                "steps": [{"step": 2, "roles": ["billing_manager"]}]}  # fmt: skip
        response = await platform.approvals.put(f"/v1/approval-rules/{uuid.uuid4()}", json=body, headers=tenant.auth)
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "steps"]
        assert "numbered 1..1 in order" in problem["msg"]


class TestTimeEntriesExceedingACertainDurationRequireApproval:
    async def test_a_long_entry_waits_for_an_approver_and_is_released_by_the_decision(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        manager_id, manager_token = manager
        request = time_entry_request(tenant, "9.5")
        await request_approval(platform, request)

        shown = await opened(platform, manager_token, request["request_id"])
        assert shown["status"] == "pending"
        assert shown["waiting_for_roles"] == ["billing_manager", "approver"]
        pending = (await platform.approvals.get("/v1/approvals/pending", headers=bearer(manager_token))).json()
        assert request["request_id"] in [p["request_id"] for p in pending]
        [notice] = await notices(platform, request["request_id"])
        assert (notice["reason"], notice["step"], notice["roles"]) == ("requested", 1, ["billing_manager", "approver"])

        status, body = await decide(platform, manager_token, request["request_id"], comment="onsite migration day")
        assert status == 200, body
        assert body["status"] == "approved"
        [decision] = await decisions(platform, request["request_id"])
        assert decision["outcome"] == "approved"
        assert decision["decided_by"] == f"user:{manager_id}"
        assert decision["item_id"] == request["item_id"]
        assert decision["reason"] == "onsite migration day"

    async def test_an_entry_the_current_rules_do_not_hold_is_released_at_once(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        request = time_entry_request(tenant, "7.5")  # a requester with an older copy of the rules held it
        await request_approval(platform, request)
        [decision] = await decisions(platform, request["request_id"])
        assert (decision["outcome"], decision["decided_by"]) == ("approved", "system:rules")


class TestDiscountsOverACertainValueRequireManagerialApproval:
    async def test_catalog_holds_the_discount_until_a_manager_approves_it(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        await catalog_has_rules(platform, tenant)
        _, approver_token = await platform.add_user(tenant, "approver")
        discount_id, saved = await save_discount(platform, tenant, "30", name="Loyalty", token=tenant.token)
        request_id = saved["event"]["state"]["approval_request_id"]
        assert saved["event"]["state"]["approval_status"] == "pending"

        shown = await opened(platform, manager[1], request_id)
        assert (shown["item_type"], shown["item_id"], shown["trigger_value"]) == ("discount", discount_id, "30")
        status, body = await decide(platform, approver_token, request_id)
        assert status == 403
        assert body["detail"] == (
            "role 'approver' may not decide step 1 of this request; it needs one of ['billing_manager']"
        )

        status, _ = await decide(platform, manager[1], request_id)
        assert status == 200

        async def approved_in_catalog() -> bool:
            found = (await platform.catalog.get(f"/v1/discounts/{discount_id}", headers=tenant.auth)).json()
            return bool(found["approval_status"] == "approved")

        await platform.wait_for(approved_in_catalog, timeout_s=60)

    async def test_the_admin_who_saved_it_cannot_approve_their_own_discount(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await catalog_has_rules(platform, tenant)
        manager_id, manager_token = await platform.add_user(tenant, "billing_manager")
        _, saved = await save_discount(platform, tenant, "40", name="Win-back", token=manager_token)
        request_id = saved["event"]["state"]["approval_request_id"]
        shown = await opened(platform, manager_token, request_id)
        assert shown["requested_by"] == str(manager_id)  # catalog names the user who saved it
        status, body = await decide(platform, manager_token, request_id)
        assert (status, body["detail"]) == (403, "you requested this item or it is yours: somebody else must decide it")
        mine = (await platform.approvals.get("/v1/approvals/pending", headers=bearer(manager_token))).json()
        assert request_id not in [p["request_id"] for p in mine]


class TestOnlyAuthorizedUsersCanApprovePendingItems:
    @pytest.mark.parametrize("role", ["viewer", "technician"])
    async def test_a_role_without_the_approval_permission_is_refused_with_the_reason(
        self, platform: Platform, tenant: Tenant, role: str
    ) -> None:
        request = time_entry_request(tenant, "10")
        await request_approval(platform, request)
        await opened(platform, tenant.token, request["request_id"])
        _, token = await platform.add_user(tenant, role)
        status, body = await decide(platform, token, request["request_id"])
        assert (status, body["detail"]) == (403, f"role '{role}' may not approvals:decide")
        assert (await platform.approvals.get("/v1/approvals/pending", headers=bearer(token))).status_code == 403

    async def test_another_tenants_manager_cannot_see_or_decide_it(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        request = time_entry_request(tenant, "10")
        await request_approval(platform, request)
        await opened(platform, manager[1], request["request_id"])
        other = await platform.sandbox_tenant()
        _, outsider = await platform.add_user(other, "billing_manager")
        status, _ = await decide(platform, outsider, request["request_id"])
        assert status == 404
        seen = await platform.approvals.get(f"/v1/approvals/{request['request_id']}", headers=bearer(outsider))
        assert seen.status_code == 404

    async def test_a_forged_token_is_refused(self, platform: Platform) -> None:
        response = await platform.approvals.get("/v1/approvals/pending", headers=bearer("not-a-token"))
        assert response.status_code == 401


class TestTheApprovalStatusIsUpdatedAndAffectsBilling:
    async def test_a_rejected_discount_never_takes_effect_and_the_history_shows_why(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        await catalog_has_rules(platform, tenant)
        discount_id, saved = await save_discount(platform, tenant, "60", name="Too generous", token=tenant.token)
        request_id = saved["event"]["state"]["approval_request_id"]
        await opened(platform, manager[1], request_id)
        status, body = await decide(platform, manager[1], request_id, "reject")
        assert (status, body["detail"][0]["loc"]) == (422, ["body", "comment"])
        status, _ = await decide(platform, manager[1], request_id, "reject", comment="above our margin")
        assert status == 200

        async def rejected_in_catalog() -> bool:
            found = (await platform.catalog.get(f"/v1/discounts/{discount_id}", headers=tenant.auth)).json()
            return bool(found["approval_status"] == "rejected")

        await platform.wait_for(rejected_in_catalog, timeout_s=60)
        history = (
            await platform.approvals.get(f"/v1/approval-items/discount/{discount_id}", headers=tenant.auth)
        ).json()
        [entry] = history
        assert entry["status"] == "rejected"
        assert entry["steps"][0]["outcome"] == "rejected"
        assert entry["steps"][0]["comment"] == "above our margin"
        assert entry["steps"][0]["decided_by"] == f"user:{manager[0]}"
        status, body = await decide(platform, manager[1], request_id)
        assert status == 409
        assert "rejected" in body["detail"]

    async def test_a_redelivered_request_or_decision_has_no_second_effect(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        await catalog_has_rules(platform, tenant)
        discount_id, saved = await save_discount(platform, tenant, "35", name="Twice", token=tenant.token)
        request_id = saved["event"]["state"]["approval_request_id"]
        [request] = await platform.messages("approvals.requests.v1", where=lambda d: d["request_id"] == request_id)
        await request_approval(platform, request)  # the same request again, as a new message
        await opened(platform, manager[1], request_id)
        status, _ = await decide(platform, manager[1], request_id)
        assert status == 200
        [decision] = await decisions(platform, request_id)
        key = f"{tenant.tenant_id}:discount:{discount_id}"
        await platform.publish("approvals.decisions.v1", decision, key=key)  # redelivered decision
        await platform.publish("approvals.decisions.v1", decision, key=key)

        async def approved_in_catalog() -> bool:
            found = (await platform.catalog.get(f"/v1/discounts/{discount_id}", headers=tenant.auth)).json()
            return bool(found["approval_status"] == "approved")

        await platform.wait_for(approved_in_catalog, timeout_s=60)
        assert len(await notices(platform, request_id, settle_s=1.0)) == 1
        assert len(await decisions(platform, request_id, settle_s=1.0)) == 3  # ours, then the two copies we sent
        rows = await platform.fetch_as_tenant(
            "approvals", tenant, "SELECT count(*) AS n FROM requests WHERE item_id = $1", discount_id
        )
        assert rows[0]["n"] == 1

        async def audited_once() -> list[Any]:
            return await platform.fetch_as_tenant(
                "catalog",
                tenant,
                "SELECT action FROM audit_log WHERE entity_id = $1 AND action LIKE 'approval_%'",
                discount_id,
            )

        assert [r["action"] for r in await platform.wait_for(audited_once)] == ["approval_approved"]


class TestTwoStepApproval:
    async def test_a_large_credit_needs_a_manager_then_an_admin(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str]
    ) -> None:
        credit = {
            **time_entry_request(tenant, "900.00"),
            "item_type": "credit",
            "item_id": f"credit-{uuid.uuid4().hex[:8]}",
            "requesting_service": "invoicing",
            "requested_by": None,
            "trigger_field": "amount",
            "currency": "GBP",
            "summary": "Credit of 900.00 GBP for the outage in January",
        }
        await request_approval(platform, credit)
        await opened(platform, manager[1], credit["request_id"])
        status, body = await decide(platform, manager[1], credit["request_id"], step=1)
        assert status == 200
        assert (body["status"], body["current_step"], body["waiting_for_roles"]) == ("pending", 2, ["admin"])
        second = await notices(platform, credit["request_id"], count=2)
        assert [(n["reason"], n["step"], n["roles"]) for n in second] == [
            ("requested", 1, ["billing_manager"]),
            ("next_step", 2, ["admin"]),
        ]
        assert await decisions(platform, credit["request_id"], timeout_s=2.0) == []
        status, body = await decide(platform, manager[1], credit["request_id"], step=1)
        assert status == 409  # step 1 was decided
        status, body = await decide(platform, tenant.token, credit["request_id"], step=2)
        assert status == 200
        assert body["status"] == "approved"
        assert [s["outcome"] for s in body["steps"]] == ["approved", "approved"]
        [decision] = await decisions(platform, credit["request_id"])
        assert (decision["outcome"], decision["step"]) == ("approved", 2)


class TestTimeoutsOnTheBillingClock:
    async def test_an_undecided_entry_escalates_to_an_admin_who_is_reminded_until_they_decide(
        self, platform: Platform, tenant: Tenant
    ) -> None:
        await platform.advance_clock(tenant, T0.isoformat())
        request = time_entry_request(tenant, "11")
        await request_approval(platform, request)
        shown = await opened(platform, tenant.token, request["request_id"])
        assert datetime.fromisoformat(shown["due_at"]) == T0 + timedelta(hours=72)  # the default rule: 72 h
        await platform.advance_clock(tenant, (T0 + timedelta(hours=71)).isoformat())
        assert (await opened(platform, tenant.token, request["request_id"]))["escalated"] is False

        await platform.advance_clock(tenant, (T0 + timedelta(hours=73)).isoformat())

        async def handed_to_admin() -> dict[str, Any] | None:
            found = await opened(platform, tenant.token, request["request_id"])
            return found if found["escalated"] else None

        escalated = await platform.wait_for(handed_to_admin, timeout_s=60)
        assert escalated["waiting_for_roles"] == ["admin"]
        [_, notice] = await notices(platform, request["request_id"], count=2)
        assert (notice["reason"], notice["roles"]) == ("escalated", ["admin"])

        # 144 h: the work used to be rejected by system:timeout here, and never billed (issue 18)
        await platform.advance_clock(tenant, (T0 + timedelta(hours=150)).isoformat())
        [*_, reminder] = await notices(platform, request["request_id"], count=3)
        assert (reminder["reason"], reminder["roles"]) == ("reminder", ["admin"])
        assert datetime.fromisoformat(reminder["occurred_at"]) == T0 + timedelta(hours=144)
        still = await opened(platform, tenant.token, request["request_id"])
        assert (still["status"], datetime.fromisoformat(still["due_at"])) == ("pending", T0 + timedelta(hours=216))

        status, _ = await decide(platform, tenant.token, request["request_id"])  # the admin decides at last
        assert status == 200
        [decision] = await decisions(platform, request["request_id"])
        assert decision["outcome"] == "approved"


# -- every change is audited ---------------------------------------------------------------------------------


async def open_time_entry(platform: Platform, tenant: Tenant) -> str:
    request = time_entry_request(tenant, "12")
    await request_approval(platform, request)
    await opened(platform, tenant.token, request["request_id"])
    return str(request["request_id"])


async def call_put_rule(platform: Platform, tenant: Tenant, manager: str) -> tuple[str, str, dict[str, Any], str]:
    rule = {
        "item_type": "refund",
        "threshold_field": "amount",
        "threshold": "250",
        "steps": [{"step": 1, "roles": ["admin"]}],
    }
    return "PUT", f"/v1/approval-rules/{uuid.uuid4()}", rule, tenant.token


async def call_republish(platform: Platform, tenant: Tenant, manager: str) -> tuple[str, str, dict[str, Any], str]:
    return "POST", "/v1/approval-rules/republish", {}, tenant.token


async def call_approve(platform: Platform, tenant: Tenant, manager: str) -> tuple[str, str, dict[str, Any], str]:
    return "POST", f"/v1/approvals/{await open_time_entry(platform, tenant)}/approve", {}, manager


async def call_reject(platform: Platform, tenant: Tenant, manager: str) -> tuple[str, str, dict[str, Any], str]:
    return "POST", f"/v1/approvals/{await open_time_entry(platform, tenant)}/reject", {"comment": "no ticket"}, manager


MUTATING_ROUTES = {
    "PUT /v1/approval-rules/{rule_id}": call_put_rule,
    "POST /v1/approval-rules/republish": call_republish,
    "POST /v1/approvals/{request_id}/approve": call_approve,
    "POST /v1/approvals/{request_id}/reject": call_reject,
}


async def approvals_mutating_routes(platform: Platform) -> set[str]:
    document = (await platform.approvals.get("/openapi.json")).json()
    return {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in ("put", "post", "delete", "patch")
    }


class TestEveryChangeIsAudited:
    async def test_every_mutating_route_is_known_to_this_spec(self, platform: Platform) -> None:
        routes = await approvals_mutating_routes(platform)
        assert routes == set(MUTATING_ROUTES), "add new mutating routes to MUTATING_ROUTES with how to call them"

    @pytest.mark.parametrize("route", sorted(MUTATING_ROUTES))
    async def test_a_call_leaves_an_audit_row_naming_the_caller(
        self, platform: Platform, tenant: Tenant, manager: tuple[uuid.UUID, str], route: str
    ) -> None:
        method, url, body, token = await MUTATING_ROUTES[route](platform, tenant, manager[1])
        head = await platform.value_as_tenant("approvals", tenant, "SELECT coalesce(max(seq), 0) FROM audit_log")
        response = await platform.approvals.request(method, url, json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        rows = await platform.fetch_as_tenant(
            "approvals", tenant, "SELECT actor, action FROM audit_log WHERE seq > $1", head
        )
        caller = manager[0] if token == manager[1] else None
        actors = {r["actor"] for r in rows}
        assert actors, f"{route} wrote no audit row"
        if caller is not None:
            assert f"user:{caller}" in actors

    async def test_a_refused_decision_is_audited_too(self, platform: Platform, tenant: Tenant) -> None:
        request_id = await open_time_entry(platform, tenant)
        _, manager_token = await platform.add_user(tenant, "billing_manager")
        status, _ = await decide(platform, manager_token, request_id, "reject")  # without the comment it needs
        assert status == 422
        rows = await platform.fetch_as_tenant(
            "approvals", tenant, "SELECT action, after FROM audit_log WHERE entity_id = $1 ORDER BY seq", request_id
        )
        assert [r["action"] for r in rows] == ["approval_requested", "approval_decision_refused"]

    async def test_the_audit_chain_verifies(self, platform: Platform, tenant: Tenant) -> None:
        await open_time_entry(platform, tenant)
        [verified] = await platform.fetch_as_tenant(
            "approvals", tenant, "SELECT ok, checked FROM audit_verify($1)", tenant.tenant_id
        )
        assert verified["ok"] is True
        assert verified["checked"] >= 9  # the 8 default rules and the request
