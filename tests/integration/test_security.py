"""Tenant isolation and least privilege, proven against the real database by reading Postgres's own catalog.

Every statement below runs as one of the roles the stack provisions: ``<svc>_app`` (what a running service
logs in as), ``<svc>_owner`` (migrations) or the superuser (the catalog reads only).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest

from shared.db.migrate import YOYO_TABLES
from shared.services import SERVICES
from tests.integration.conftest import POLL_TIMEOUT_S, SERVICE_NAMES, as_tenant, rows_as_tenant
from tests.support.platform import Platform, Tenant

SCHEMAS = [s.schema for s in SERVICES]
APP_ROLES = [s.app_role for s in SERVICES]
OWNER_ROLES = [s.owner_role for s in SERVICES]

Connect = Callable[[str], Awaitable[asyncpg.Connection]]


async def service_tables(admin: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every ordinary or partitioned table in a service schema, yoyo's bookkeeping aside."""
    return await admin.fetch(
        """
        SELECT n.nspname AS schema, c.relname AS name, c.oid, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY($2::text[])
        ORDER BY 1, 2
        """,
        SCHEMAS,
        list(YOYO_TABLES),
    )


class TestEveryServiceTableIsTenantScoped:
    async def test_every_service_schema_has_tables_to_check(self, admin: asyncpg.Connection) -> None:
        tables = await service_tables(admin)

        schemas_with_tables = {t["schema"] for t in tables}
        assert schemas_with_tables == set(SCHEMAS)
        for schema in SCHEMAS:  # the kernel tables are in every schema
            names = {t["name"] for t in tables if t["schema"] == schema}
            assert {"inbox", "outbox", "audit_log", "audit_head", "relay_state"} <= names, schema

    async def test_has_a_tenant_id_column_that_is_part_of_its_primary_key(self, admin: asyncpg.Connection) -> None:
        rows = await admin.fetch(
            """
            SELECT n.nspname AS schema, c.relname AS name,
                   EXISTS (SELECT 1 FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0
                             AND NOT a.attisdropped) AS has_column,
                   EXISTS (SELECT 1 FROM pg_constraint k
                             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
                           WHERE k.conrelid = c.oid AND k.contype = 'p' AND a.attname = 'tenant_id') AS in_pk
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY($2::text[])
            """,
            SCHEMAS,
            list(YOYO_TABLES),
        )

        assert rows
        without_column = [f"{r['schema']}.{r['name']}" for r in rows if not r["has_column"]]
        not_in_key = [f"{r['schema']}.{r['name']}" for r in rows if not r["in_pk"]]
        assert without_column == []
        assert not_in_key == []

    async def test_has_row_level_security_enabled_and_forced(self, admin: asyncpg.Connection) -> None:
        tables = await service_tables(admin)

        assert tables
        not_enabled = [f"{t['schema']}.{t['name']}" for t in tables if not t["relrowsecurity"]]
        not_forced = [f"{t['schema']}.{t['name']}" for t in tables if not t["relforcerowsecurity"]]
        assert not_enabled == []
        assert not_forced == []

    async def test_has_at_least_one_policy_that_applies_to_the_app_role(self, admin: asyncpg.Connection) -> None:
        rows = await admin.fetch(
            """
            SELECT n.nspname AS schema, c.relname AS name,
                   count(p.oid) AS policies,
                   count(p.oid) FILTER (WHERE 0 = ANY(p.polroles)
                                           OR (SELECT oid FROM pg_roles WHERE rolname = n.nspname || '_app')
                                              = ANY(p.polroles)) AS app_policies
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relname = ANY($2::text[])
            GROUP BY 1, 2
            """,
            SCHEMAS,
            list(YOYO_TABLES),
        )

        assert rows
        without_policy = [f"{r['schema']}.{r['name']}" for r in rows if r["policies"] == 0]
        without_app_policy = [f"{r['schema']}.{r['name']}" for r in rows if r["app_policies"] == 0]
        assert without_policy == []
        assert without_app_policy == []

    async def test_has_its_tenant_policy_compare_tenant_id_with_the_transactions_tenant(
        self, admin: asyncpg.Connection
    ) -> None:
        rows = await admin.fetch(
            """
            SELECT n.nspname AS schema, c.relname AS name,
                   pg_get_expr(p.polqual, p.polrelid) AS using_expr,
                   pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
            FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1::text[]) AND p.polroles = '{0}' AND NOT c.relname = ANY($2::text[])
            """,
            SCHEMAS,
            list(YOYO_TABLES),
        )

        assert rows
        loose = [
            (f"{r['schema']}.{r['name']}", r["using_expr"], r["check_expr"])
            for r in rows
            if r["using_expr"] != f"(tenant_id = {r['schema']}.app_tenant())" or r["check_expr"] != r["using_expr"]
        ]
        assert loose == []


class TestServiceRolesHoldNoPower:
    async def test_every_app_and_owner_role_exists(self, admin: asyncpg.Connection) -> None:
        names = await admin.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", APP_ROLES + OWNER_ROLES
        )

        assert {r["rolname"] for r in names} == set(APP_ROLES + OWNER_ROLES)

    async def test_no_app_role_owns_a_table_schema_or_function_in_any_service_schema(
        self, admin: asyncpg.Connection
    ) -> None:
        owned = await admin.fetch(
            """
            SELECT 'relation' AS kind, n.nspname || '.' || c.relname AS name, r.rolname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname = ANY($2::text[])
            UNION ALL
            SELECT 'schema', n.nspname, r.rolname
            FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname = ANY($2::text[])
            UNION ALL
            SELECT 'function', n.nspname || '.' || p.proname, r.rolname
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname = ANY($2::text[])
            """,
            SCHEMAS,
            APP_ROLES,
        )

        assert [dict(r) for r in owned] == []

    async def test_every_service_schema_and_its_objects_belong_to_that_services_owner(
        self, admin: asyncpg.Connection
    ) -> None:
        foreign = await admin.fetch(
            """
            SELECT n.nspname AS schema, 'schema' AS object, r.rolname
            FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname <> n.nspname || '_owner'
            UNION ALL
            SELECT n.nspname, c.relname, r.rolname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname <> n.nspname || '_owner'
            UNION ALL
            SELECT n.nspname, p.proname, r.rolname
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
            WHERE n.nspname = ANY($1::text[]) AND r.rolname <> n.nspname || '_owner'
            """,
            SCHEMAS,
        )

        assert [dict(r) for r in foreign] == []

    async def test_no_app_or_owner_role_is_superuser_or_bypasses_row_level_security(
        self, admin: asyncpg.Connection
    ) -> None:
        powerful = await admin.fetch(
            """
            SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles
            WHERE rolname = ANY($1::text[]) AND (rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb)
            """,
            APP_ROLES + OWNER_ROLES,
        )

        assert [dict(r) for r in powerful] == []

    async def test_no_app_role_is_a_member_of_any_other_role(self, admin: asyncpg.Connection) -> None:
        memberships = await admin.fetch(
            """
            SELECT m.rolname AS member, g.rolname AS member_of
            FROM pg_auth_members am
            JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.roleid
            WHERE m.rolname = ANY($1::text[])
            """,
            APP_ROLES,
        )

        assert [dict(r) for r in memberships] == []


# -- isolation on real data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadModel:
    """Where ``service`` keeps a tenant's client, filled from the catalog's events (or by the catalog itself)."""

    service: str
    table: str
    id_column: str
    only_clients: str = "TRUE"

    @property
    def clients(self) -> str:
        return f"SELECT * FROM {self.table} WHERE {self.only_clients}"


READ_MODELS = [
    ReadModel("catalog", "entities", "entity_id", only_clients="entity_type = 'company'"),
    ReadModel("metering", "companies", "company_id"),
    ReadModel("rating", "catalog_entities", "entity_id", only_clients="entity_type = 'company'"),
    ReadModel("invoicing", "companies", "company_id"),
]


async def clients_of(conn: asyncpg.Connection, model: ReadModel, tenant_id: UUID) -> list[asyncpg.Record]:
    return await rows_as_tenant(conn, tenant_id, model.clients)


async def wait_for_clients(
    platform: Platform, conn: asyncpg.Connection, model: ReadModel, tenant: Tenant
) -> list[asyncpg.Record]:
    """Poll, as the tenant itself, until the tenant's client has reached ``model``."""

    async def probe() -> list[asyncpg.Record]:
        return await clients_of(conn, model, tenant.tenant_id)

    rows: list[asyncpg.Record] = await platform.wait_for(probe, timeout_s=POLL_TIMEOUT_S)
    assert [r[model.id_column] for r in rows] == [tenant.company_id]
    return rows


@pytest.fixture
async def two_tenants(platform: Platform) -> tuple[Tenant, Tenant]:
    return await platform.sandbox_tenant(), await platform.sandbox_tenant()


@pytest.mark.parametrize("model", READ_MODELS, ids=lambda m: f"{m.service}.{m.table}")
class TestTenantsAreIsolatedUnderTheAppRole:
    async def test_a_tenant_sees_none_of_another_tenants_rows(
        self, platform: Platform, app_conn: Connect, two_tenants: tuple[Tenant, Tenant], model: ReadModel
    ) -> None:
        a, b = two_tenants
        conn = await app_conn(model.service)
        await wait_for_clients(platform, conn, model, a)
        await wait_for_clients(platform, conn, model, b)

        everything_b_sees = await rows_as_tenant(conn, b.tenant_id, f"SELECT tenant_id FROM {model.table}")
        a_rows_asked_for_by_b = await rows_as_tenant(
            conn, b.tenant_id, f"SELECT * FROM {model.table} WHERE tenant_id = $1", a.tenant_id
        )

        assert {r["tenant_id"] for r in everything_b_sees} == {b.tenant_id}
        assert a_rows_asked_for_by_b == []

    async def test_inserting_a_row_for_another_tenant_violates_row_level_security(
        self, platform: Platform, app_conn: Connect, two_tenants: tuple[Tenant, Tenant], model: ReadModel
    ) -> None:
        a, b = two_tenants
        conn = await app_conn(model.service)
        [client_of_a] = await wait_for_clients(platform, conn, model, a)
        forged = dict(client_of_a) | {model.id_column: uuid.uuid4()}
        if "company_ref" in forged:
            forged["company_ref"] = f"forged-{uuid.uuid4().hex[:6]}"
        placeholders = ", ".join(f"${i}" for i in range(1, len(forged) + 1))
        insert = f"INSERT INTO {model.table} ({', '.join(forged)}) VALUES ({placeholders})"

        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level security policy"):
            async with as_tenant(conn, b.tenant_id):
                await conn.execute(insert, *forged.values())

        assert await clients_of(conn, model, a.tenant_id) == [client_of_a]

    async def test_updating_or_deleting_another_tenants_rows_affects_none(
        self, platform: Platform, app_conn: Connect, two_tenants: tuple[Tenant, Tenant], model: ReadModel
    ) -> None:
        a, b = two_tenants
        conn = await app_conn(model.service)
        before = await wait_for_clients(platform, conn, model, a)

        async with as_tenant(conn, b.tenant_id):
            updated = await conn.execute(
                f"UPDATE {model.table} SET version = version + 100 WHERE tenant_id = $1", a.tenant_id
            )
            updated_others = await conn.execute(
                f"UPDATE {model.table} SET version = version + 100 WHERE tenant_id <> $1", b.tenant_id
            )
            deleted = await conn.execute(f"DELETE FROM {model.table} WHERE tenant_id = $1", a.tenant_id)

        assert (updated, updated_others, deleted) == ("UPDATE 0", "UPDATE 0", "DELETE 0")
        assert await clients_of(conn, model, a.tenant_id) == before

    async def test_without_a_tenant_a_select_returns_no_rows_rather_than_failing(
        self, platform: Platform, app_conn: Connect, two_tenants: tuple[Tenant, Tenant], model: ReadModel
    ) -> None:
        a, _ = two_tenants
        await wait_for_clients(platform, await app_conn(model.service), model, a)
        fresh = await app_conn(model.service)

        never_set = await fresh.fetch(f"SELECT * FROM {model.table}")
        inside_the_tenants_transaction = await clients_of(fresh, model, a.tenant_id)
        after_that_transaction = await fresh.fetch(f"SELECT * FROM {model.table}")

        assert never_set == []
        assert len(inside_the_tenants_transaction) == 1
        assert after_that_transaction == []


class TestTheInboxOfEveryServiceRefusesRowsForAnotherTenant:
    @pytest.mark.parametrize("service_name", SERVICE_NAMES)
    async def test_an_insert_with_tenant_a_while_tenant_b_is_set_is_refused(
        self, app_conn: Connect, service_name: str
    ) -> None:
        a, b = uuid.uuid4(), uuid.uuid4()
        conn = await app_conn(service_name)

        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level security"):
            async with as_tenant(conn, b):
                await conn.execute(
                    "INSERT INTO inbox (tenant_id, consumer, message_id) VALUES ($1, 'spec', $2)", a, str(a)
                )

        assert await rows_as_tenant(conn, a, "SELECT * FROM inbox") == []


# -- walls between services ------------------------------------------------------------------------------


class TestServiceSchemasAreWalledOff:
    async def test_no_app_role_has_usage_on_another_services_schema(self, admin: asyncpg.Connection) -> None:
        crossings = await admin.fetch(
            """
            SELECT r AS role, s AS schema FROM unnest($1::text[]) r, unnest($2::text[]) s
            WHERE s || '_app' <> r AND (has_schema_privilege(r, s, 'USAGE') OR has_schema_privilege(r, s, 'CREATE'))
            """,
            APP_ROLES,
            SCHEMAS,
        )

        assert [dict(r) for r in crossings] == []

    async def test_no_app_role_holds_a_grant_on_another_services_tables(self, admin: asyncpg.Connection) -> None:
        grants = await admin.fetch(
            """
            SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants
            WHERE grantee = ANY($1::text[]) AND table_schema = ANY($2::text[])
            """,
            APP_ROLES,
            SCHEMAS,
        )

        crossing = [dict(r) for r in grants if r["grantee"] != f"{r['table_schema']}_app"]
        own = {r["grantee"] for r in grants if r["grantee"] == f"{r['table_schema']}_app"}
        assert own == set(APP_ROLES)  # the view shows the app roles' grants at all
        assert crossing == []

    @pytest.mark.parametrize("service_name", SERVICE_NAMES)
    async def test_an_app_role_is_denied_reading_another_services_schema(
        self, app_conn: Connect, service_name: str
    ) -> None:
        conn = await app_conn(service_name)
        tenant = uuid.uuid4()

        for other in (s for s in SCHEMAS if s != service_name):
            with pytest.raises(
                asyncpg.exceptions.InsufficientPrivilegeError, match=f"permission denied for schema {other}"
            ):
                async with as_tenant(conn, tenant):
                    await conn.fetch(f"SELECT * FROM {other}.audit_log")


class TestYoyoBookkeepingIsHiddenFromAppRoles:
    async def test_every_service_schema_keeps_its_migration_log(self, admin: asyncpg.Connection) -> None:
        present = await admin.fetch(
            """
            SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1::text[]) AND c.relname = '_yoyo_migration'
            """,
            SCHEMAS,
        )

        assert {r["nspname"] for r in present} == set(SCHEMAS)

    async def test_no_app_role_holds_any_privilege_on_a_yoyo_table(self, admin: asyncpg.Connection) -> None:
        accessible = await admin.fetch(
            """
            SELECT n.nspname AS schema, c.relname AS name
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = ANY($1::text[]) AND c.relname = ANY($2::text[])
              AND has_table_privilege(n.nspname || '_app', c.oid,
                                      'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
            """,
            SCHEMAS,
            list(YOYO_TABLES),
        )
        grants = await admin.fetch(
            """
            SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants
            WHERE grantee = ANY($1::text[]) AND table_name = ANY($2::text[])
            """,
            APP_ROLES,
            list(YOYO_TABLES),
        )

        assert [dict(r) for r in accessible] == []
        assert [dict(r) for r in grants] == []

    @pytest.mark.parametrize("service_name", SERVICE_NAMES)
    async def test_an_app_role_is_denied_reading_or_writing_its_migration_log(
        self, app_conn: Connect, service_name: str
    ) -> None:
        conn = await app_conn(service_name)

        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied"):
            await conn.fetch("SELECT * FROM _yoyo_migration")
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied"):
            await conn.execute("DELETE FROM _yoyo_migration")


class TestAppRolesCannotShadowTheSchemasObjects:
    """SECURITY DEFINER functions run as the owner with ``search_path = <schema>``; Postgres still searches the
    session's temporary schema first for relations unless ``pg_temp`` is listed, so a temporary table made by
    the app role must not be able to stand in for one of the schema's tables."""

    async def test_no_app_role_may_create_temporary_tables(self, admin: asyncpg.Connection) -> None:
        may = await admin.fetch(
            "SELECT r FROM unnest($1::text[]) r WHERE has_database_privilege(r, current_database(), 'TEMPORARY')",
            APP_ROLES,
        )

        assert [r["r"] for r in may] == []
