"""Per-tenant readiness (GET /v1/readiness, shared/readiness.py) without a database: the check is given a
connection that answers its queries."""

from __future__ import annotations

import uuid
from typing import Any

from shared.readiness import NOTHING_TO_WAIT_FOR, ReadinessQuestion, ReadModelCheck, Requirement

TENANT = uuid.uuid4()
CLIENT = uuid.uuid4()
CHECK = ReadModelCheck(
    service="tax_currency",
    tenant="tenant?",
    company_by_id="company by id?",
    company_by_ref="company by ref?",
    also=(Requirement("approval_rules", "rules?", "no rules yet"),),
)


class FakeConnection:
    """Answers each query with whether its read model holds the row (True unless listed as absent)."""

    def __init__(self, *absent: str) -> None:
        self.absent = set(absent)
        self.asked: list[tuple[str, tuple[Any, ...]]] = []

    async def fetchval(self, query: str, *args: Any) -> bool:
        self.asked.append((query, args))
        return query not in self.absent


class TestReadModelCheck:
    async def test_a_tenant_whose_view_holds_everything_is_ready(self) -> None:
        assert await CHECK.missing(FakeConnection(), ReadinessQuestion(TENANT)) == []

    async def test_names_the_tenant_when_no_catalog_event_has_arrived(self) -> None:
        [gap] = await CHECK.missing(FakeConnection("tenant?"), ReadinessQuestion(TENANT))

        assert (gap.item, gap.key, gap.reason) == (
            "tenant",
            f"tenant_id={TENANT}",
            "not in tax_currency's catalog view yet",
        )

    async def test_names_an_unknown_client_by_the_id_it_was_asked_about(self) -> None:
        conn = FakeConnection("company by id?")

        [gap] = await CHECK.missing(conn, ReadinessQuestion(TENANT, company_id=CLIENT))

        assert (gap.item, gap.key) == ("company", f"company_id={CLIENT}")
        assert ("company by id?", (TENANT, CLIENT)) in conn.asked

    async def test_names_an_unknown_client_by_its_ref(self) -> None:
        conn = FakeConnection("company by ref?")

        [gap] = await CHECK.missing(conn, ReadinessQuestion(TENANT, company_ref="acme"))

        assert (gap.item, gap.key) == ("company", "company_ref=acme")

    async def test_names_what_else_the_service_needs_with_its_reason(self) -> None:
        [gap] = await CHECK.missing(FakeConnection("rules?"), ReadinessQuestion(TENANT))

        assert (gap.item, gap.reason) == ("approval_rules", "no rules yet")

    def test_says_what_it_checked(self) -> None:
        assert CHECK.checked(ReadinessQuestion(TENANT)) == ["tenant", "approval_rules"]
        assert CHECK.checked(ReadinessQuestion(TENANT, company_ref="acme")) == ["tenant", "company", "approval_rules"]

    async def test_a_service_that_keeps_no_clients_is_ready_for_any_and_does_not_claim_to_check_it(self) -> None:
        no_clients = ReadModelCheck(service="approvals", tenant="tenant?")
        question = ReadinessQuestion(TENANT, company_id=CLIENT)

        assert await no_clients.missing(FakeConnection(), question) == []
        assert no_clients.checked(question) == ["tenant"]

    async def test_a_service_without_a_read_model_has_nothing_to_wait_for(self) -> None:
        conn = FakeConnection()

        assert await NOTHING_TO_WAIT_FOR.missing(conn, ReadinessQuestion(TENANT, company_id=CLIENT)) == []
        assert conn.asked == []
