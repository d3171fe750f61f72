"""One service's schema on a throwaway embedded PostgreSQL, for benches that time a consumer's batch path alone
(no broker, no other service): provisioned, migrated and reached as the service's app role, as in production."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.migrate import migrate_service
from shared.db.pool import create_pool
from shared.db.provision import RoleCredentials, dsn_for, ensure_database, provision_all, role_password
from shared.services import service
from shared.stack.postgres import EmbeddedPostgres
from tests.support.stack import _pick_ports


@dataclass(frozen=True)
class ServiceDb:
    admin_dsn: str  # superuser on the billing database (seeding)
    pool: asyncpg.Pool  # the service's app role (RLS applies)


@asynccontextmanager
async def service_db(home: Path, name: str) -> AsyncIterator[ServiceDb]:
    pg_port, _, _ = _pick_ports()
    postgres = EmbeddedPostgres(home / "pgdata", pg_port, home / "pg-superuser-password")
    postgres.start(log_path=home / "postgres.log")
    try:
        admin = postgres.admin_dsn.rsplit("/", 1)[0] + "/billing"
        secret = uuid.uuid4().hex
        await ensure_database(postgres.admin_dsn, "billing")
        await provision_all(admin, secret=secret)
        spec = service(name)
        roles = (spec.owner_role, spec.app_role)
        owner, app = (dsn_for(admin, RoleCredentials(r, role_password(r, secret=secret))) for r in roles)
        await migrate_service(owner, spec)
        pool = await create_pool(app, max_size=2)
        try:
            yield ServiceDb(admin, pool)
        finally:
            await pool.close()
    finally:
        postgres.stop()
