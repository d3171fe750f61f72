"""The testcontainers path: the same provisioning and migrations against Postgres 18 in a container."""

from __future__ import annotations

import pytest

from shared.db.migrate import migrate_service
from shared.db.provision import RoleCredentials, dsn_for, ensure_database, provision_all, role_password
from shared.services import SERVICES
from tests.support.containers import container_backends


@pytest.mark.needs_docker
class TestTheContainerBackends:
    async def test_provision_and_migrate_every_service_on_a_containerised_postgres(self) -> None:
        with container_backends() as (database_url, _kafka):
            await ensure_database(database_url, "billing")
            admin = database_url.rsplit("/", 1)[0] + "/billing"
            await provision_all(admin, secret="containers")

            for spec in SERVICES:
                owner = RoleCredentials(spec.owner_role, role_password(spec.owner_role, secret="containers"))
                await migrate_service(dsn_for(admin, owner), spec)  # fails on any table without forced RLS
