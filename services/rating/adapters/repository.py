"""Rating persistence: catalog read model, clock, billing periods, charges (asyncpg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    CatalogEvent,
    CompanyState,
    PlanState,
    ServiceState,
    TenantState,
)
from shared.contracts.rating import ChargeCreated
from shared.db.pool import DbConnection

_STATE_TYPES: dict[str, Any] = {
    "company": CompanyState,
    "service": ServiceState,
    "plan": PlanState,
    "assignment": AssignmentState,
    "bundle": BundleState,
}


class RatingRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model -------------------------------------------------------------------
    async def save_catalog(self, event: CatalogEvent) -> None:
        state = event.state
        if isinstance(state, TenantState):
            await self._conn.execute(
                """INSERT INTO tenants VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE
                   SET timezone = EXCLUDED.timezone, livemode = EXCLUDED.livemode, version = EXCLUDED.version
                   WHERE tenants.version < EXCLUDED.version""",
                state.tenant_id,
                state.timezone,
                state.mode == "live",
                event.version,
            )
            return
        await self._conn.execute(
            """INSERT INTO catalog_entities VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE
               SET state = EXCLUDED.state, version = EXCLUDED.version
               WHERE catalog_entities.version < EXCLUDED.version""",
            event.tenant_id,
            event.entity_type,
            event.entity_id,
            state.model_dump(mode="json"),
            event.version,
        )

    async def tenant(self, tenant_id: UUID) -> tuple[str, bool] | None:
        row = await self._conn.fetchrow("SELECT timezone, livemode FROM tenants WHERE tenant_id = $1", tenant_id)
        return (row["timezone"], row["livemode"]) if row else None

    async def entities(self, entity_type: str, ids: Sequence[UUID]) -> dict[UUID, Any]:
        rows = await self._conn.fetch(
            "SELECT entity_id, state FROM catalog_entities WHERE entity_type = $1 AND entity_id = ANY($2::uuid[])",
            entity_type,
            list(ids),
        )
        model = _STATE_TYPES[entity_type]
        return {r["entity_id"]: model.model_validate(r["state"]) for r in rows}

    async def assignments_of(self, company_ids: Sequence[UUID]) -> list[AssignmentState]:
        rows = await self._conn.fetch(
            """SELECT state FROM catalog_entities WHERE entity_type = 'assignment'
               AND (state ->> 'company_id') = ANY($1::text[])""",
            [str(c) for c in company_ids],
        )
        return [AssignmentState.model_validate(r["state"]) for r in rows]

    async def all_assignments(self) -> list[AssignmentState]:
        rows = await self._conn.fetch("SELECT state FROM catalog_entities WHERE entity_type = 'assignment'")
        return [AssignmentState.model_validate(r["state"]) for r in rows]

    # -- clock ---------------------------------------------------------------------------------
    async def clock(self, tenant_id: UUID) -> datetime | None:
        value: datetime | None = await self._conn.fetchval(
            "SELECT now FROM tenant_clock WHERE tenant_id = $1", tenant_id
        )
        return value

    async def set_clock(self, tenant_id: UUID, now: datetime) -> bool:
        """Move the clock forward; False for a tick older than what we have (ticks may repeat)."""
        moved = await self._conn.fetchval(
            """INSERT INTO tenant_clock VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET now = EXCLUDED.now
               WHERE tenant_clock.now < EXCLUDED.now RETURNING 1""",
            tenant_id,
            now,
        )
        return bool(moved)

    # -- periods -------------------------------------------------------------------------------
    async def count_into_open_periods(
        self, tenant_id: UUID, counts: Sequence[tuple[UUID, str, date, date, int]]
    ) -> set[tuple[UUID, str, date]]:
        """Add charge counts to periods that are open (creating them); returns the periods that took them.

        The upsert locks each period row, so a concurrent close waits for this transaction (and the
        charges it publishes precede the close in the outbox).
        """
        rows = await self._conn.fetch(
            """
            INSERT INTO billing_periods (tenant_id, company_id, frequency, period_start, period_end, status,
                                         charge_count)
            SELECT $1, c, f, s, e, 'open', n
            FROM unnest($2::uuid[], $3::text[], $4::date[], $5::date[], $6::int[]) AS q(c, f, s, e, n)
            ON CONFLICT (tenant_id, company_id, frequency, period_start) DO UPDATE
                SET charge_count = billing_periods.charge_count + EXCLUDED.charge_count
                WHERE billing_periods.status = 'open'
            RETURNING company_id, frequency, period_start
            """,
            tenant_id,
            [c[0] for c in counts],
            [c[1] for c in counts],
            [c[2] for c in counts],
            [c[3] for c in counts],
            [c[4] for c in counts],
        )
        return {(r["company_id"], r["frequency"], r["period_start"]) for r in rows}

    async def last_closed_end(self, company_id: UUID, frequency: str) -> date | None:
        value: date | None = await self._conn.fetchval(
            """SELECT max(period_end) FROM billing_periods
               WHERE company_id = $1 AND frequency = $2 AND status = 'closed'""",
            company_id,
            frequency,
        )
        return value

    async def close_period(
        self, tenant_id: UUID, company_id: UUID, frequency: str, start: date, end: date
    ) -> int | None:
        """Close a period (creating it if no charge came); returns its charge count, None if already closed."""
        count: int | None = await self._conn.fetchval(
            """
            INSERT INTO billing_periods VALUES ($1, $2, $3, $4, $5, 'closed', 0)
            ON CONFLICT (tenant_id, company_id, frequency, period_start) DO UPDATE SET status = 'closed'
                WHERE billing_periods.status = 'open'
            RETURNING charge_count
            """,
            tenant_id,
            company_id,
            frequency,
            start,
            end,
        )
        return count

    # -- charges -------------------------------------------------------------------------------
    async def existing_charges(self, ids: Sequence[UUID]) -> set[UUID]:
        rows = await self._conn.fetch("SELECT charge_id FROM charges WHERE charge_id = ANY($1::uuid[])", list(ids))
        return {r["charge_id"] for r in rows}

    async def insert_charges(self, charges: Sequence[ChargeCreated]) -> None:
        await self._conn.execute(
            """
            INSERT INTO charges (tenant_id, charge_id, company_id, period_start, period_end, amount, currency,
                                 document)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::date[], $6::numeric[],
                                 $7::text[], $8::jsonb[])
            """,
            [c.tenant_id for c in charges],
            [c.charge_id for c in charges],
            [c.company_id for c in charges],
            [c.period_start for c in charges],
            [c.period_end for c in charges],
            [c.amount for c in charges],
            [c.currency for c in charges],
            [c.model_dump(mode="json") for c in charges],
        )

    async def take_unrated(self, limit: int = 5000) -> list[dict[str, Any]]:
        """Remove and return parked records (they are parked again if still unpriceable)."""
        rows = await self._conn.fetch(
            """DELETE FROM unrated_records WHERE record_id IN (
                   SELECT record_id FROM unrated_records ORDER BY record_id LIMIT $1 FOR UPDATE)
               RETURNING document""",
            limit,
        )
        return [r["document"] for r in rows]

    async def save_unrated(self, tenant_id: UUID, items: Sequence[tuple[UUID, str, dict[str, Any]]]) -> None:
        await self._conn.executemany(
            """INSERT INTO unrated_records VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, record_id) DO UPDATE SET reason = EXCLUDED.reason""",
            [(tenant_id, rid, reason, doc) for rid, reason, doc in items],
        )
