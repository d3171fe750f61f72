"""The audit trail: append-only for the service roles, hash-chained per tenant, and verifiable.

Tampering is done as the superuser (who bypasses row-level security and every grant); verification runs as
the service's app role through `shared.audit.verify`, exactly as a service would run it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared import audit
from shared.db.pool import create_pool
from shared.db.uow import UnitOfWork, unit_of_work
from shared.services import service
from tests.integration.conftest import SERVICE_NAMES, AppPool, as_tenant, rows_as_tenant
from tests.support.platform import Platform, Tenant

# The platform operator creates the tenant, its admin and the admin's API key; the admin then saves the client,
# service, plan and assignment: one audit row each.
SANDBOX_TENANT_ROWS = 7
AT = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


async def verify(app_pool: AppPool, tenant_id: UUID, service_name: str = "catalog") -> audit.Verification:
    async with unit_of_work(await app_pool(service_name), tenant_id=tenant_id) as uow:
        return await audit.verify(uow)


async def trail(app_pool: AppPool, tenant_id: UUID, service_name: str = "catalog") -> list[dict[str, Any]]:
    """The tenant's audit rows in seq order, read as the app role (jsonb decoded)."""
    async with unit_of_work(await app_pool(service_name), tenant_id=tenant_id) as uow:
        return [dict(r) for r in await uow.conn.fetch("SELECT * FROM audit_log ORDER BY seq")]


async def append(app_pool: AppPool, service_name: str, tenant_id: UUID, count: int) -> None:
    """``count`` audit rows written by the app role through `shared.audit.record`."""
    async with unit_of_work(await app_pool(service_name), tenant_id=tenant_id) as uow:
        for i in range(count):
            await audit.record(
                uow,
                actor="spec",
                action="updated",
                entity_type="widget",
                entity_id=f"w-{i}",
                at=AT + timedelta(seconds=i),
                before={"n": i},
                after={"n": i + 1},
            )


@pytest.fixture
async def audited_tenant(platform: Platform, app_pool: AppPool) -> Tenant:
    """A fresh sandbox tenant whose catalog trail holds exactly one row per entity saved, and verifies."""
    tenant = await platform.sandbox_tenant()
    assert len(await trail(app_pool, tenant.tenant_id)) == SANDBOX_TENANT_ROWS
    assert (await verify(app_pool, tenant.tenant_id)).ok
    return tenant


# -- append-only -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service_name", SERVICE_NAMES)
class TestTheAuditLogIsAppendOnlyForEveryAppRole:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_log SET actor = 'someone else'",
            "UPDATE audit_log SET after = NULL WHERE seq = 1",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE seq = 2",
            "TRUNCATE audit_log",
        ],
        ids=["update-all", "update-one", "delete-all", "delete-one", "truncate"],
    )
    async def test_changing_or_removing_rows_is_denied(
        self, platform: Platform, app_pool: AppPool, service_name: str, statement: str
    ) -> None:
        tenant_id = uuid.uuid4()
        await append(app_pool, service_name, tenant_id, 2)
        written = await trail(app_pool, tenant_id, service_name)
        conn = await platform.connect(service_name)

        try:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied for table"):
                async with as_tenant(conn, tenant_id):
                    await conn.execute(statement)
        finally:
            await conn.close()

        assert await trail(app_pool, tenant_id, service_name) == written
        assert (await verify(app_pool, tenant_id, service_name)).ok

    async def test_the_catalog_grants_only_select_and_insert_on_it(
        self, admin: asyncpg.Connection, service_name: str
    ) -> None:
        spec = service(service_name)
        table = f"{spec.schema}.audit_log"

        held = {
            privilege: await admin.fetchval("SELECT has_table_privilege($1, $2, $3)", spec.app_role, table, privilege)
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
        }

        assert held == {
            "SELECT": True,
            "INSERT": True,
            "UPDATE": False,
            "DELETE": False,
            "TRUNCATE": False,
            "REFERENCES": False,
            "TRIGGER": False,
        }

    async def test_appending_to_another_tenants_trail_violates_row_level_security(
        self, platform: Platform, app_pool: AppPool, service_name: str
    ) -> None:
        a, b = uuid.uuid4(), uuid.uuid4()
        conn = await platform.connect(service_name)

        try:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level security"):
                async with as_tenant(conn, b):
                    await conn.execute(
                        """INSERT INTO audit_log (tenant_id, seq, audit_id, occurred_at, actor, action, entity_type,
                                                  entity_id, prev_hash, hash)
                           VALUES ($1, 0, $2, now(), 'spec', 'created', 'widget', 'w', '', '')""",
                        a,
                        uuid.uuid4(),
                    )
        finally:
            await conn.close()

        assert await trail(app_pool, a, service_name) == []


@pytest.mark.parametrize("service_name", SERVICE_NAMES)
class TestTheAuditHeadIsOutOfTheAppRolesReach:
    async def test_the_catalog_grants_the_app_role_nothing_on_it(
        self, admin: asyncpg.Connection, service_name: str
    ) -> None:
        spec = service(service_name)

        any_privilege = await admin.fetchval(
            "SELECT has_table_privilege($1, $2, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
            spec.app_role,
            f"{spec.schema}.audit_head",
        )
        grants = await admin.fetch(
            """SELECT privilege_type FROM information_schema.role_table_grants
               WHERE grantee = $1 AND table_schema = $2 AND table_name = 'audit_head'""",
            spec.app_role,
            spec.schema,
        )

        assert any_privilege is False
        assert grants == []

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT * FROM audit_head",
            "INSERT INTO audit_head VALUES (app_tenant(), 0, 'genesis')",
            "UPDATE audit_head SET seq = 0",
            "DELETE FROM audit_head",
            "TRUNCATE audit_head",
        ],
        ids=["select", "insert", "update", "delete", "truncate"],
    )
    async def test_every_statement_on_it_is_denied(
        self, platform: Platform, app_pool: AppPool, service_name: str, statement: str
    ) -> None:
        tenant_id = uuid.uuid4()
        await append(app_pool, service_name, tenant_id, 1)
        conn = await platform.connect(service_name)

        try:
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied for table"):
                async with as_tenant(conn, tenant_id):
                    await conn.execute(statement)
        finally:
            await conn.close()

        assert (await verify(app_pool, tenant_id, service_name)).ok


# -- the chain ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service_name", SERVICE_NAMES)
class TestEveryServiceChainsTheRowsItRecords:
    async def test_rows_get_consecutive_seqs_each_linking_to_the_hash_before(
        self, app_pool: AppPool, service_name: str
    ) -> None:
        tenant_id = uuid.uuid4()

        await append(app_pool, service_name, tenant_id, 3)
        rows = await trail(app_pool, tenant_id, service_name)

        assert [r["seq"] for r in rows] == [1, 2, 3]
        assert [r["prev_hash"] for r in rows] == ["genesis", rows[0]["hash"], rows[1]["hash"]]
        assert all(re.fullmatch("[0-9a-f]{64}", r["hash"]) for r in rows)
        assert len({r["hash"] for r in rows}) == 3
        assert await verify(app_pool, tenant_id, service_name) == audit.Verification(
            ok=True, checked=3, broken_seq=None, problem=None
        )


class TestTheChainIsKeptByTheDatabase:
    async def test_seq_and_hashes_supplied_by_the_writer_are_overwritten(
        self, platform: Platform, app_pool: AppPool
    ) -> None:
        tenant_id = uuid.uuid4()
        conn = await platform.connect("catalog")

        try:
            async with as_tenant(conn, tenant_id):
                await conn.execute(
                    """INSERT INTO audit_log (tenant_id, seq, audit_id, occurred_at, actor, action, entity_type,
                                              entity_id, prev_hash, hash)
                       VALUES ($1, 999, $2, $3, 'spec', 'created', 'widget', 'w', 'forged', 'forged')""",
                    tenant_id,
                    uuid.uuid4(),
                    AT,
                )
        finally:
            await conn.close()
        [row] = await trail(app_pool, tenant_id)

        assert (row["seq"], row["prev_hash"]) == (1, "genesis")
        assert row["hash"] != "forged"
        assert (await verify(app_pool, tenant_id)).ok

    async def test_a_rolled_back_change_leaves_neither_its_row_nor_a_gap(self, app_pool: AppPool) -> None:
        tenant_id = uuid.uuid4()
        await append(app_pool, "catalog", tenant_id, 1)

        async def a_change_that_fails_after_recording_its_audit_row() -> None:
            async with unit_of_work(await app_pool("catalog"), tenant_id=tenant_id) as uow:
                await audit.record(uow, actor="spec", action="doomed", entity_type="widget", entity_id="w", at=AT)
                await uow.conn.execute("SELECT 1 / 0")

        with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
            await a_change_that_fails_after_recording_its_audit_row()
        await append(app_pool, "catalog", tenant_id, 1)

        rows = await trail(app_pool, tenant_id)
        assert [(r["seq"], r["action"]) for r in rows] == [(1, "updated"), (2, "updated")]
        assert await verify(app_pool, tenant_id) == audit.Verification(
            ok=True, checked=2, broken_seq=None, problem=None
        )

    async def test_concurrent_appends_for_one_tenant_get_distinct_consecutive_seqs(self, platform: Platform) -> None:
        tenant_id = uuid.uuid4()
        pool = await create_pool(platform.stack.dsn(service("catalog")), min_size=8, max_size=8)

        async def one(i: int) -> None:
            async with unit_of_work(pool, tenant_id=tenant_id) as uow:
                await audit.record(uow, actor="spec", action="updated", entity_type="widget", entity_id=str(i), at=AT)

        try:
            await asyncio.gather(*(one(i) for i in range(16)))
            async with unit_of_work(pool, tenant_id=tenant_id) as uow:
                seqs = [r["seq"] for r in await uow.conn.fetch("SELECT seq FROM audit_log ORDER BY seq")]
                verification = await audit.verify(uow)
        finally:
            await pool.close()

        assert seqs == list(range(1, 17))
        assert verification == audit.Verification(ok=True, checked=16, broken_seq=None, problem=None)


class TestTheChainCannotBeRedirectedByTheAppRole:
    async def test_a_temporary_audit_head_does_not_steer_the_chain_trigger(
        self, platform: Platform, admin: asyncpg.Connection, app_pool: AppPool
    ) -> None:
        tenant_id = uuid.uuid4()
        conn = await platform.connect("catalog")

        try:
            async with as_tenant(conn, tenant_id):
                try:
                    async with conn.transaction():  # a savepoint: the refusal must not abort the test's write
                        await conn.execute(
                            "CREATE TEMP TABLE audit_head (tenant_id uuid PRIMARY KEY, seq bigint, hash text);"
                            "GRANT ALL ON pg_temp.audit_head TO catalog_owner"
                        )
                        await conn.execute("INSERT INTO pg_temp.audit_head VALUES ($1, 41, 'forged')", tenant_id)
                except asyncpg.exceptions.InsufficientPrivilegeError:
                    pass  # no temporary tables for app roles: nothing to steer with
                await audit.record(
                    UnitOfWork(conn=conn, tenant_id=tenant_id),
                    actor="spec",
                    action="created",
                    entity_type="widget",
                    entity_id="w",
                    at=AT,
                )
        finally:
            await conn.close()

        [row] = await trail(app_pool, tenant_id)
        head = await admin.fetchrow("SELECT seq, hash FROM catalog.audit_head WHERE tenant_id = $1", tenant_id)
        assert (row["seq"], row["prev_hash"]) == (1, "genesis")
        assert head is not None
        assert (head["seq"], head["hash"]) == (1, row["hash"])


# -- verification ------------------------------------------------------------------------------------------


class TestVerifyingAnUntouchedChain:
    async def test_reports_ok_and_counts_every_row_of_the_tenant(
        self, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        rows = await trail(app_pool, audited_tenant.tenant_id)

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert result == audit.Verification(ok=True, checked=len(rows), broken_seq=None, problem=None)
        assert result.checked == SANDBOX_TENANT_ROWS

    async def test_reports_ok_with_nothing_checked_for_a_tenant_without_rows(self, app_pool: AppPool) -> None:
        result = await verify(app_pool, uuid.uuid4())

        assert result == audit.Verification(ok=True, checked=0, broken_seq=None, problem=None)

    async def test_counts_only_the_tenants_own_rows(self, platform: Platform, app_pool: AppPool) -> None:
        a, b = await platform.sandbox_tenant(), await platform.sandbox_tenant()
        await append(app_pool, "catalog", b.tenant_id, 3)

        result_a, result_b = await verify(app_pool, a.tenant_id), await verify(app_pool, b.tenant_id)

        assert (result_a.ok, result_a.checked) == (True, SANDBOX_TENANT_ROWS)
        assert (result_b.ok, result_b.checked) == (True, SANDBOX_TENANT_ROWS + 3)

    async def test_refuses_to_verify_a_tenant_other_than_the_transactions(
        self, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        async with unit_of_work(await app_pool("catalog"), tenant_id=uuid.uuid4()) as uow:
            with pytest.raises(asyncpg.exceptions.RaiseError, match="outside that tenant's transaction"):
                await uow.conn.fetchrow("SELECT * FROM audit_verify($1)", audited_tenant.tenant_id)


class TestVerifyingATamperedChainNamesTheFirstBrokenLink:
    async def test_a_modified_row_is_reported_as_modified_at_its_seq(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        await admin.execute(
            """UPDATE catalog.audit_log SET after = after || '{"name": "Evil Corp"}'
               WHERE tenant_id = $1 AND seq = 3""",
            audited_tenant.tenant_id,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq, result.checked) == (False, 3, 2)
        assert result.problem is not None
        assert "modified" in result.problem

    async def test_a_modified_row_whose_hash_was_recomputed_breaks_the_next_link(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        await admin.execute(
            """UPDATE catalog.audit_log SET actor = 'nobody' WHERE tenant_id = $1 AND seq = 2""",
            audited_tenant.tenant_id,
        )
        await admin.execute(
            """UPDATE catalog.audit_log l SET hash = catalog.audit_row_hash(l) WHERE tenant_id = $1 AND seq = 2""",
            audited_tenant.tenant_id,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq, result.checked) == (False, 3, 2)
        assert result.problem is not None
        assert "does not link" in result.problem

    async def test_a_deleted_middle_row_is_reported_missing_at_its_seq(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        await admin.execute(
            "DELETE FROM catalog.audit_log WHERE tenant_id = $1 AND seq = 3",
            audited_tenant.tenant_id,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq, result.checked) == (False, 3, 2)
        assert result.problem is not None
        assert "row 3 is missing" in result.problem

    async def test_deleted_newest_rows_are_detected_through_the_anchored_head(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        await admin.execute(
            "DELETE FROM catalog.audit_log WHERE tenant_id = $1 AND seq > 3",
            audited_tenant.tenant_id,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq, result.checked) == (False, 4, 3)
        assert result.problem is not None
        assert "newest rows were removed" in result.problem
        assert f"anchored head is row {SANDBOX_TENANT_ROWS}" in result.problem

    async def test_deleting_the_whole_trail_is_detected_through_the_anchored_head(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        await admin.execute("DELETE FROM catalog.audit_log WHERE tenant_id = $1", audited_tenant.tenant_id)

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq, result.checked) == (False, 1, 0)

    async def test_a_rewritten_newest_row_with_a_recomputed_hash_is_named_as_the_broken_link(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        newest = SANDBOX_TENANT_ROWS
        await admin.execute(
            "UPDATE catalog.audit_log SET actor = 'nobody' WHERE tenant_id = $1 AND seq = $2",
            audited_tenant.tenant_id,
            newest,
        )
        await admin.execute(
            "UPDATE catalog.audit_log l SET hash = catalog.audit_row_hash(l) WHERE tenant_id = $1 AND seq = $2",
            audited_tenant.tenant_id,
            newest,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert (result.ok, result.broken_seq) == (False, newest)
        assert result.problem is not None
        assert "removed" not in result.problem

    async def test_a_rewritten_newest_row_with_a_recomputed_hash_is_detected(
        self, admin: asyncpg.Connection, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        newest = SANDBOX_TENANT_ROWS
        await admin.execute(
            "UPDATE catalog.audit_log SET actor = 'nobody' WHERE tenant_id = $1 AND seq = $2",
            audited_tenant.tenant_id,
            newest,
        )
        await admin.execute(
            "UPDATE catalog.audit_log l SET hash = catalog.audit_row_hash(l) WHERE tenant_id = $1 AND seq = $2",
            audited_tenant.tenant_id,
            newest,
        )

        result = await verify(app_pool, audited_tenant.tenant_id)

        assert result.ok is False


# -- content -----------------------------------------------------------------------------------------------


def company_body(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    """The client `Platform.sandbox_tenant` created, with ``changes``."""
    return {
        "company_id": str(tenant.company_id),
        "company_ref": tenant.company_ref,
        "name": "Acme Dental",
        "billing_email": "ap@acme.example",
        "region": "GB",
        "currency": tenant.currency,
        "payment_terms_days": 30,
        "billing_anchor": "2026-01-01",
        "refs": [{"source": "ninjaone", "ref": f"ninja-{tenant.company_ref}"}],
    } | changes


class TestEachAuditRowRecordsWhoWhatWhenAndTheChange:
    async def test_catalog_saves_record_the_operator_the_entity_and_its_state(
        self, platform: Platform, app_pool: AppPool
    ) -> None:
        started = datetime.now(UTC)

        tenant = await platform.sandbox_tenant()

        finished = datetime.now(UTC)
        rows = await trail(app_pool, tenant.tenant_id)
        admin = f"user:{rows[1]['entity_id']}"
        assert [(r["actor"], r["action"]) for r in rows] == [
            ("platform-operator", "created"),
            ("platform-operator", "created"),
            ("platform-operator", "api_key_created"),
        ] + [(admin, "created")] * 4
        assert [r["entity_type"] for r in rows] == [
            "tenant",
            "user",
            "user",
            "company",
            "service",
            "plan",
            "assignment",
        ]
        assert rows[0]["entity_id"] == str(tenant.tenant_id)
        assert rows[3]["entity_id"] == str(tenant.company_id)
        assert all(r["before"] is None for r in rows)
        assert rows[0]["after"]["name"] == "Northwind IT"
        assert rows[0]["after"]["mode"] == "sandbox"
        assert rows[1]["after"]["role"] == "admin"
        assert "secret" not in str(rows[2]["after"])
        assert rows[3]["after"]["company_ref"] == tenant.company_ref
        times = [r["occurred_at"] for r in rows]
        assert times == sorted(times)
        assert started - timedelta(seconds=1) <= times[0] <= times[-1] <= finished + timedelta(seconds=1)
        assert len({r["audit_id"] for r in rows}) == SANDBOX_TENANT_ROWS

    async def test_an_update_records_the_state_before_and_after(
        self, platform: Platform, app_pool: AppPool, audited_tenant: Tenant
    ) -> None:
        tenant = audited_tenant

        await platform.put(
            f"/v1/companies/{tenant.company_id}", company_body(tenant, name="Acme Dental Group"), token=tenant.token
        )

        newest = (await trail(app_pool, tenant.tenant_id))[-1]
        assert newest["seq"] == SANDBOX_TENANT_ROWS + 1
        assert newest["actor"].startswith("user:")
        assert newest["action"] == "updated"
        assert (newest["entity_type"], newest["entity_id"]) == ("company", str(tenant.company_id))
        assert newest["before"]["name"] == "Acme Dental"
        assert newest["after"]["name"] == "Acme Dental Group"
        assert (await verify(app_pool, tenant.tenant_id)).ok

    async def test_a_recorded_row_keeps_exactly_what_the_writer_gave(self, app_pool: AppPool) -> None:
        tenant_id = uuid.uuid4()

        async with unit_of_work(await app_pool("invoicing"), tenant_id=tenant_id) as uow:
            await audit.record(
                uow,
                actor="user:alice@msp.example",
                action="invoice_voided",
                entity_type="invoice",
                entity_id=tenant_id,
                at=AT,
                before={"status": "finalized", "total": "37.50"},
                after={"status": "void", "total": "37.50"},
            )
        [row] = await trail(app_pool, tenant_id, "invoicing")

        assert row["tenant_id"] == tenant_id
        assert (row["actor"], row["action"]) == ("user:alice@msp.example", "invoice_voided")
        assert (row["entity_type"], row["entity_id"]) == ("invoice", str(tenant_id))
        assert row["before"] == {"status": "finalized", "total": "37.50"}
        assert row["after"] == {"status": "void", "total": "37.50"}
        assert row["occurred_at"] == AT
        assert isinstance(row["audit_id"], UUID)

    async def test_the_app_role_reads_only_its_own_tenants_rows(self, platform: Platform, app_pool: AppPool) -> None:
        a, b = await platform.sandbox_tenant(), await platform.sandbox_tenant()
        conn = await platform.connect("catalog")

        try:
            rows = await rows_as_tenant(conn, b.tenant_id, "SELECT DISTINCT tenant_id FROM audit_log")
        finally:
            await conn.close()

        assert [r["tenant_id"] for r in rows] == [b.tenant_id]
        assert len(await trail(app_pool, a.tenant_id)) == SANDBOX_TENANT_ROWS
