"""One schema and two roles per service, created by a superuser before migrations run.

``<svc>_owner`` owns the schema and its tables (migrations run as it); ``<svc>_app`` is what the service
logs in as: it owns nothing, has no BYPASSRLS, and gets privileges only through `grant_runtime_privileges`.
Idempotent: running it again changes nothing but passwords.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared.services import SERVICES, ServiceSpec


@dataclass(frozen=True, slots=True)
class RoleCredentials:
    role: str
    password: str


def role_password(role: str, *, secret: str) -> str:
    """Local stack only: a deterministic password per role from one stack secret."""
    import hashlib

    return hashlib.sha256(f"{secret}:{role}".encode()).hexdigest()[:32]


def dsn_for(base_dsn: str, creds: RoleCredentials, *, database: str | None = None) -> str:
    parts = urlsplit(base_dsn)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(creds.role)}:{quote(creds.password)}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


async def ensure_database(admin_dsn: str, database: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


async def provision_service(conn: asyncpg.Connection, spec: ServiceSpec, *, secret: str) -> None:
    for role, login in ((spec.owner_role, True), (spec.app_role, True)):
        password = role_password(role, secret=secret)
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        # Role names come from the fixed service list, never from input; passwords are hex.
        await conn.execute(
            f"{verb} ROLE {role} {'LOGIN' if login else 'NOLOGIN'} NOSUPERUSER NOBYPASSRLS NOCREATEROLE "
            f"NOCREATEDB PASSWORD '{password}'"
        )
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.schema} AUTHORIZATION {spec.owner_role}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {spec.schema} FROM PUBLIC")
    await conn.execute(f"GRANT USAGE ON SCHEMA {spec.schema} TO {spec.app_role}")
    await conn.execute(f"ALTER ROLE {spec.app_role} SET search_path = {spec.schema}")
    await conn.execute(f"ALTER ROLE {spec.owner_role} SET search_path = {spec.schema}")


async def provision_all(admin_dsn: str, *, secret: str) -> None:
    """Create (or refresh) every service's schema and roles. ``admin_dsn`` names the target database."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        # Nobody but owners creates objects in public.
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        # No temporary tables for service roles: a temp table shadows a schema's table for functions
        # whose search_path reaches pg_temp (ours put it last, see migrate.pin_definer_search_paths).
        await conn.execute(
            "DO $$ BEGIN EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$"
        )
        for spec in SERVICES:
            await provision_service(conn, spec, secret=secret)
    finally:
        await conn.close()
