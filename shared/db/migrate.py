"""Forward-only SQL migrations per service, applied with yoyo as the schema's owner.

Each service's schema gets the kernel migrations (tenancy helper, inbox, outbox, audit trail) followed by
its own ``services/<svc>/migrations/*.sql``. After applying, the runtime role's privileges are granted
from the tables' declarations, and every table is checked for ``tenant_id`` and forced row-level
security: a migration that forgets either fails here, not in production.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from yoyo import get_backend, read_migrations

from shared.db.pool import DbConnection
from shared.services import ServiceSpec

KERNEL_MIGRATIONS = Path(__file__).with_name("kernel_migrations")
SERVICES_ROOT = Path(__file__).resolve().parents[2] / "services"
YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")


class UnsafeTable(RuntimeError):
    """A table in a service schema lacks tenant_id or forced row-level security."""


def migration_dirs(spec: ServiceSpec) -> list[str]:
    dirs = [str(KERNEL_MIGRATIONS)]
    own = SERVICES_ROOT / spec.name / "migrations"
    if own.is_dir() and any(own.glob("*.sql")):
        dirs.append(str(own))
    return dirs


def apply_migrations(owner_dsn: str, spec: ServiceSpec) -> int:
    """Apply pending migrations (blocking; yoyo is synchronous). Returns how many were applied."""
    url = owner_dsn.replace("postgresql://", "postgresql+psycopg://", 1).replace(
        "postgres://", "postgresql+psycopg://", 1
    )
    sep = "&" if "?" in url else "?"
    backend = get_backend(f"{url}{sep}schema={spec.schema}")
    migrations = read_migrations(*migration_dirs(spec))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


async def pin_definer_search_paths(conn: DbConnection, spec: ServiceSpec) -> None:
    """Every SECURITY DEFINER function resolves names in its own schema, with pg_temp searched last, so a
    caller's temporary table can never stand in for one of the schema's tables."""
    rows = await conn.fetch(
        """SELECT p.oid::regprocedure::text AS signature FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace = $1::regnamespace""",
        spec.schema,
    )
    for row in rows:
        await conn.execute(f"ALTER FUNCTION {row['signature']} SET search_path = {spec.schema}, pg_temp")


async def grant_runtime_privileges(conn: DbConnection, spec: ServiceSpec) -> None:
    """Run as the owner: grant the app role what each table's declaration allows."""
    s, app = spec.schema, spec.app_role
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {app}")
    await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {app}")
    await conn.execute(f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {app}")
    rows = await conn.fetch(
        """
        SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') AS note
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        """,
        s,
    )
    for row in rows:
        name, note = row["relname"], row["note"]
        if name in YOYO_TABLES or "@no-app-access" in note:
            await conn.execute(f"REVOKE ALL ON {s}.{name} FROM {app}")
        elif "@append-only" in note:
            await conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{name} FROM {app}")


async def check_tenant_safety(conn: DbConnection, spec: ServiceSpec) -> None:
    rows = await conn.fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                   AS has_tenant,
               EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a
                         ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                       WHERE i.indrelid = c.oid AND i.indisprimary AND a.attname = 'tenant_id')
                   AS tenant_in_pk
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        """,
        spec.schema,
    )
    problems = [
        f"{spec.schema}.{r['relname']}: "
        + ", ".join(
            p
            for p, bad in (
                ("no tenant_id column", not r["has_tenant"]),
                ("tenant_id not in primary key", not r["tenant_in_pk"]),
                ("row-level security not enabled", not r["relrowsecurity"]),
                ("row-level security not forced", not r["relforcerowsecurity"]),
            )
            if bad
        )
        for r in rows
        if r["relname"] not in YOYO_TABLES
        and not (r["has_tenant"] and r["tenant_in_pk"] and r["relrowsecurity"] and r["relforcerowsecurity"])
    ]
    if problems:
        raise UnsafeTable("; ".join(problems))


async def migrate_service(owner_dsn: str, spec: ServiceSpec) -> int:
    import asyncio

    applied = await asyncio.to_thread(apply_migrations, owner_dsn, spec)
    conn = await asyncpg.connect(owner_dsn, server_settings={"search_path": spec.schema})
    try:
        await check_tenant_safety(conn, spec)
        await pin_definer_search_paths(conn, spec)
        await grant_runtime_privileges(conn, spec)
    finally:
        await conn.close()
    return applied
