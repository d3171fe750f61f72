"""A month's partition made in a transaction that rolls back is made again (found by the simulator: a deadlocked
batch left metering sure of a partition that did not exist, failing every later record of that month)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from services.metering.adapters.repository import MeteringRepository
from tests.support.platform import Platform


class TestPartitionsMadeInARolledBackTransaction:
    async def test_are_made_again_by_the_next_transaction(self, platform: Platform) -> None:
        month = datetime(2090, random.randint(1, 12), 15, tzinfo=UTC)  # a month no other spec uses
        conn = await platform.connect("metering")
        try:
            repo = MeteringRepository(conn)
            tx = conn.transaction()
            await tx.start()
            await repo.ensure_partitions("usage", [month])
            await repo.ensure_partitions("usage", [month])  # asked again in the same transaction: it is there now
            await tx.rollback()  # e.g. the batch deadlocked

            async with conn.transaction():
                await repo.ensure_partitions("usage", [month])
                table = f"usage_records_{month:%Y%m}"
                exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
        finally:
            await conn.close()
        assert exists, f"{table} was not made again"
