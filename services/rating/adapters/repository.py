"""Rating persistence: catalog read model, clock, billing periods, charges (asyncpg)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.rating.domain.buckets import Lot, Settlement
from shared.contracts.catalog import (
    AssignmentState,
    BundleState,
    CatalogEvent,
    ClientStatusState,
    CompanyState,
    PlanState,
    ServiceState,
    TenantState,
    UserState,
)
from shared.contracts.rating import ChargeCreated
from shared.db.pool import DbConnection

_STATE_TYPES: dict[str, Any] = {
    "company": CompanyState,
    "service": ServiceState,
    "plan": PlanState,
    "assignment": AssignmentState,
    "bundle": BundleState,
    "client_status": ClientStatusState,
    "user": UserState,
}


LedgerRow = tuple[UUID, UUID, str, UUID, UUID, UUID | None, date, datetime, Decimal, str, str | None, str]
"""tenant, record, type, company, service, assignment, period start, occurred at, quantity, disposition, note,
and the record as JSON text"""


def _lots(doc: Any) -> list[Lot]:
    return [Lot(Decimal(x["hours"]), x["periods_left"]) for x in doc or []]


def carried_doc(s: Settlement) -> list[dict[str, Any]]:
    """The lots a settlement carries out, as ``bucket_usage.carried`` keeps them."""
    return [{"hours": str(lot.hours), "periods_left": lot.periods_left} for lot in s.rolled_out]


class RatingRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- ordering between rating's consumers ----------------------------------------------------------
    async def lock_tenant(self, tenant_id: UUID, *, exclusive: bool) -> None:
        """Hold the tenant's rating lock until the transaction ends: shared while rating records, exclusive
        while the catalog view changes (and parked records are re-rated) or periods close.

        Rating's consumers run concurrently in their own transactions. Without this, a record parked for want
        of a plan can commit just after the catalog consumer looked for parked records (and stay parked),
        and a record of a line priced at close can commit just after the close read the period's records
        (and never be priced). Statements after the lock see everything committed before it (READ COMMITTED).
        """
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self._conn.execute(f"SELECT {fn}(hashtextextended($1, 0))", f"rating:{tenant_id}")

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
        if event.deleted:
            # A removed plan, assignment or service prices nothing from now on (what was charged stays).
            await self._conn.execute(
                """DELETE FROM catalog_entities WHERE entity_type = $1 AND entity_id = $2 AND version < $3""",
                event.entity_type,
                event.entity_id,
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

    async def catalog_slice(
        self, tenant_id: UUID | None, company_ids: Sequence[UUID], service_ids: Sequence[UUID]
    ) -> tuple[tuple[str, bool] | None, dict[str, dict[UUID, Any]]]:
        """The tenant's time zone and mode, and the slice of the catalog view a batch needs, in one statement:
        the clients, their assignments, those assignments' plans, the services asked for and those the plans'
        lines name, the bundles the lines name, the clients' status histories (states by type and id). The tenant is
        None when ``tenant_id`` is None or not in the view."""
        rows = await self._conn.fetch(
            """
            WITH co AS (SELECT entity_id, state FROM catalog_entities
                        WHERE entity_type = 'company' AND entity_id = ANY($2::uuid[])),
                 a AS (SELECT entity_id, state FROM catalog_entities
                       WHERE entity_type = 'assignment' AND (state ->> 'company_id') = ANY($3::text[])
                         AND (state ->> 'company_id')::uuid IN (SELECT entity_id FROM co)),
                 p AS (SELECT entity_id, state FROM catalog_entities
                       WHERE entity_type = 'plan' AND entity_id IN (SELECT (state ->> 'plan_id')::uuid FROM a)),
                 l AS (SELECT line FROM p, jsonb_array_elements(p.state -> 'lines') AS line)
            SELECT 'tenant' AS t, tenant_id AS entity_id,
                   jsonb_build_object('timezone', timezone, 'livemode', livemode) AS state
              FROM tenants WHERE tenant_id = $1::uuid
            UNION ALL SELECT 'company', entity_id, state FROM co
            UNION ALL SELECT 'assignment', entity_id, state FROM a
            UNION ALL SELECT 'plan', entity_id, state FROM p
            UNION ALL SELECT 'service', entity_id, state FROM catalog_entities
                       WHERE entity_type = 'service' AND (entity_id = ANY($4::uuid[]) OR entity_id IN (
                             SELECT (line ->> 'service_id')::uuid FROM l WHERE line ->> 'service_id' IS NOT NULL))
            UNION ALL SELECT 'bundle', entity_id, state FROM catalog_entities
                       WHERE entity_type = 'bundle' AND entity_id IN (
                             SELECT (line ->> 'bundle_id')::uuid FROM l WHERE line ->> 'bundle_id' IS NOT NULL)
            UNION ALL SELECT 'client_status', entity_id, state FROM catalog_entities
                       WHERE entity_type = 'client_status' AND entity_id IN (SELECT entity_id FROM co)
            """,
            tenant_id,
            list(company_ids),
            [str(c) for c in company_ids],
            list(service_ids),
        )
        tenant: tuple[str, bool] | None = None
        out: dict[str, dict[UUID, Any]] = {t: {} for t in _STATE_TYPES}
        for r in rows:
            if r["t"] == "tenant":
                tenant = (r["state"]["timezone"], r["state"]["livemode"])
            else:
                out[r["t"]][r["entity_id"]] = _STATE_TYPES[r["t"]].model_validate(r["state"])
        return tenant, out

    async def users(self, user_ids: Sequence[UUID], user_refs: Sequence[str]) -> list[UserState]:
        rows = await self._conn.fetch(
            """SELECT state FROM catalog_entities WHERE entity_type = 'user'
               AND (entity_id = ANY($1::uuid[]) OR (state ->> 'user_ref') = ANY($2::text[]))""",
            list(user_ids),
            list(user_refs),
        )
        return [UserState.model_validate(r["state"]) for r in rows]

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

    async def insert_charges(
        self, charges: Sequence[ChargeCreated], rule_keys: dict[UUID, str] | None = None, documents: Sequence[str] = ()
    ) -> None:
        """Keep charges as published: ``documents`` are their JSON texts (serialized here when not given)."""
        keys = rule_keys or {}
        texts = list(documents) or [c.model_dump_json() for c in charges]
        await self._conn.execute(
            """
            INSERT INTO charges (tenant_id, charge_id, company_id, period_start, period_end, amount, currency,
                                 document, rule_key)
            SELECT t, i, c, s, e, a, cur, d::jsonb, k
            FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::date[], $6::numeric[],
                        $7::text[], $8::text[], $9::text[]) AS q(t, i, c, s, e, a, cur, d, k)
            """,
            [c.tenant_id for c in charges],
            [c.charge_id for c in charges],
            [c.company_id for c in charges],
            [c.period_start for c in charges],
            [c.period_end for c in charges],
            [c.amount for c in charges],
            [c.currency for c in charges],
            texts,
            [keys.get(c.charge_id) for c in charges],
        )

    async def insert_and_publish_charges(
        self,
        charges: Sequence[ChargeCreated],
        rule_keys: dict[UUID, str],
        documents: Sequence[str],
        *,
        topic: str,
        message_keys: Sequence[str],
    ) -> None:
        """Keep charges and write their outbox rows in one statement: each charge's JSON text crosses once and
        is kept in ``charges`` (as jsonb) and published (the same text as the payload's UTF-8 bytes), in order.
        The caller flushes the unit of work's pending messages first, so the outbox order is the publish order.
        """
        await self._conn.execute(
            """
            WITH q AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::date[], $6::numeric[],
                                     $7::text[], $8::text[], $9::text[], $10::text[])
                    WITH ORDINALITY AS q(t, i, c, s, e, a, cur, d, k, mk, n)
            ), kept AS (
                INSERT INTO charges (tenant_id, charge_id, company_id, period_start, period_end, amount, currency,
                                     document, rule_key)
                SELECT t, i, c, s, e, a, cur, d::jsonb, k FROM q
            )
            INSERT INTO outbox (tenant_id, message_id, topic, key, payload)
            SELECT t, i, $11, mk, convert_to(d, 'UTF8') FROM q ORDER BY n
            """,
            [c.tenant_id for c in charges],
            [c.charge_id for c in charges],
            [c.company_id for c in charges],
            [c.period_start for c in charges],
            [c.period_end for c in charges],
            [c.amount for c in charges],
            [c.currency for c in charges],
            list(documents),
            [rule_keys.get(c.charge_id) for c in charges],
            list(message_keys),
            topic,
        )

    async def sent_for_rules(self, rule_keys: Sequence[str]) -> dict[str, tuple[Decimal, list[UUID]]]:
        """What was already sent per pricing rule: its total and its charge ids."""
        rows = await self._conn.fetch(
            """SELECT rule_key, sum(amount) AS total, array_agg(charge_id ORDER BY charge_id) AS ids
               FROM charges WHERE rule_key = ANY($1::text[]) GROUP BY rule_key""",
            list(rule_keys),
        )
        return {r["rule_key"]: (r["total"], list(r["ids"])) for r in rows}

    async def charge(self, charge_id: UUID) -> tuple[dict[str, Any], str | None] | None:
        row = await self._conn.fetchrow("SELECT document, rule_key FROM charges WHERE charge_id = $1", charge_id)
        return (row["document"], row["rule_key"]) if row else None

    async def charges_in_period(self, company_id: UUID, start: date, end: date) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT document FROM charges WHERE company_id = $1 AND period_start = $2 AND period_end = $3
               ORDER BY charge_id""",
            company_id,
            start,
            end,
        )
        return [r["document"] for r in rows]

    async def ledger(self, record_ids: Sequence[UUID]) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT record_id, record_type, disposition, note, quantity, occurred_at, period_start
               FROM rated_records WHERE record_id = ANY($1::uuid[]) ORDER BY occurred_at, record_id""",
            list(record_ids),
        )
        return [{k: str(v) if v is not None else None for k, v in dict(r).items()} for r in rows]

    async def charges_of_rule(self, rule_key: str) -> list[dict[str, Any]]:
        rows = await self._conn.fetch("SELECT document FROM charges WHERE rule_key = $1 ORDER BY charge_id", rule_key)
        return [r["document"] for r in rows]

    # -- the record ledger ---------------------------------------------------------------------
    async def record(self, rows: Sequence[LedgerRow]) -> set[UUID]:
        """Keep each record once; returns the ids that are new (a redelivery returns nothing)."""
        if not rows:
            return set()
        inserted = await self._conn.fetch(
            """
            INSERT INTO rated_records (tenant_id, record_id, record_type, company_id, service_id, assignment_id,
                                       period_start, occurred_at, quantity, disposition, note, document)
            SELECT t, r, ty, c, s, a, p, o, q, d, n, doc::jsonb
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], $7::date[],
                        $8::timestamptz[], $9::numeric[], $10::text[], $11::text[], $12::text[])
                 AS u(t, r, ty, c, s, a, p, o, q, d, n, doc)
            ON CONFLICT (tenant_id, record_id) DO NOTHING
            RETURNING record_id
            """,
            *[list(col) for col in zip(*rows, strict=True)],
        )
        return {r["record_id"] for r in inserted}

    async def deferred(
        self, assignment_id: UUID, period_start: date, disposition: str, service_id: UUID | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._conn.fetch(
            """SELECT record_id, service_id, occurred_at, quantity, document FROM rated_records
               WHERE assignment_id = $1 AND period_start = $2 AND disposition = $3
                 AND ($4::uuid IS NULL OR service_id = $4)
               ORDER BY occurred_at, record_id""",
            assignment_id,
            period_start,
            disposition,
            service_id,
        )
        return [dict(r) for r in rows]

    async def save_snapshots(
        self, tenant_id: UUID, rows: Sequence[tuple[UUID, UUID, UUID, datetime, Decimal]]
    ) -> set[UUID]:
        """Keep each snapshot count (record, client, service, when, count) once in the client's count history,
        whatever rating does with the record; returns the ids that are new (a redelivery returns nothing)."""
        if not rows:
            return set()
        inserted = await self._conn.fetch(
            """INSERT INTO snapshot_counts (tenant_id, record_id, company_id, service_id, occurred_at, quantity)
               SELECT $1, r, c, s, o, q
               FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::numeric[]) AS u(r, c, s, o, q)
               ON CONFLICT (tenant_id, record_id) DO NOTHING
               RETURNING record_id""",
            tenant_id,
            *[list(col) for col in zip(*rows, strict=True)],
        )
        return {r["record_id"] for r in inserted}

    async def snapshots_before(
        self, keys: Sequence[tuple[UUID, UUID, datetime]]
    ) -> dict[tuple[UUID, UUID, datetime], dict[str, Any]]:
        """Per (client, service, instant): the latest snapshot count before the instant (the count in force then;
        the higher record id breaks a tie), from the client's whole count history. One statement for all keys."""
        rows = await self._conn.fetch(
            """SELECT k.c, k.s, k.b, r.record_id, r.occurred_at, r.quantity
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS k(c, s, b)
               CROSS JOIN LATERAL (
                   SELECT record_id, occurred_at, quantity FROM snapshot_counts
                   WHERE company_id = k.c AND service_id = k.s AND occurred_at < k.b
                   ORDER BY occurred_at DESC, record_id DESC LIMIT 1) AS r""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
        )
        return {(r["c"], r["s"], r["b"]): dict(r) for r in rows}

    async def snapshots_after(
        self, keys: Sequence[tuple[UUID, UUID | None, datetime]]
    ) -> dict[tuple[UUID, UUID | None, datetime], datetime]:
        """Per (client, service, instant): when the first snapshot after the instant was counted (none: absent)."""
        rows = await self._conn.fetch(
            """SELECT k.c, k.s, k.b, r.occurred_at
               FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS k(c, s, b)
               CROSS JOIN LATERAL (
                   SELECT occurred_at FROM snapshot_counts
                   WHERE company_id = k.c AND service_id = k.s AND occurred_at > k.b
                   ORDER BY occurred_at, record_id LIMIT 1) AS r""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
        )
        return {(r["c"], r["s"], r["b"]): r["occurred_at"] for r in rows}

    async def deferred_total(
        self, assignment_id: UUID, period_start: date, disposition: str, service_id: UUID | None
    ) -> Decimal:
        value: Decimal = await self._conn.fetchval(
            """SELECT coalesce(sum(quantity), 0) FROM rated_records
               WHERE assignment_id = $1 AND period_start = $2 AND disposition = $3
                 AND ($4::uuid IS NULL OR service_id = $4) AND (document ->> 'kind') IS DISTINCT FROM 'snapshot'""",
            assignment_id,
            period_start,
            disposition,
            service_id,
        )
        return value

    async def closed_periods(self, keys: Sequence[tuple[UUID, str, date]]) -> set[tuple[UUID, str, date]]:
        rows = await self._conn.fetch(
            """SELECT company_id, frequency, period_start FROM billing_periods
               WHERE status = 'closed' AND (company_id, frequency, period_start) IN (
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[]))""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
        )
        return {(r["company_id"], r["frequency"], r["period_start"]) for r in rows}

    # -- buckets -------------------------------------------------------------------------------
    async def last_bucket(self, assignment_id: UUID) -> tuple[date, list[Lot]] | None:
        row = await self._conn.fetchrow(
            """SELECT period_end, carried FROM bucket_usage WHERE assignment_id = $1
               ORDER BY period_start DESC, revision DESC LIMIT 1""",
            assignment_id,
        )
        if row is None:
            return None
        return row["period_end"], _lots(row["carried"])

    async def bucket_row(self, assignment_id: UUID, period_start: date) -> dict[str, Any] | None:
        """The period's bucket usage record: its latest settlement."""
        row = await self._conn.fetchrow(
            """SELECT * FROM bucket_usage WHERE assignment_id = $1 AND period_start = $2
               ORDER BY revision DESC LIMIT 1""",
            assignment_id,
            period_start,
        )
        return dict(row) if row else None

    async def bucket_rows_from(self, assignment_id: UUID, period_start: date) -> list[dict[str, Any]]:
        """The latest settlement of every settled bucket period starting on or after ``period_start``, in order."""
        rows = await self._conn.fetch(
            """SELECT DISTINCT ON (period_start) * FROM bucket_usage
               WHERE assignment_id = $1 AND period_start >= $2
               ORDER BY period_start, revision DESC""",
            assignment_id,
            period_start,
        )
        return [dict(r) for r in rows]

    async def lock_bucket(self, assignment_id: UUID) -> None:
        """Serialize re-settlements of one assignment's bucket (accepted batches run concurrently under the
        tenant's shared lock); statements after it see the other batch's committed records and revisions."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"bucket:{assignment_id}")

    async def carried_into(self, assignment_id: UUID, period_start: date) -> list[Lot]:
        doc = await self._conn.fetchval(
            """SELECT carried FROM bucket_usage WHERE assignment_id = $1 AND period_end = $2
               ORDER BY revision DESC LIMIT 1""",
            assignment_id,
            period_start,
        )
        return _lots(doc) if doc is not None else []

    async def settled_before(self, assignment_id: UUID, period_start: date) -> tuple[date, list[Lot]] | None:
        """The latest settlement of the last settled bucket period ending by ``period_start``: its end and the lots
        it carries out."""
        row = await self._conn.fetchrow(
            """SELECT period_end, carried FROM bucket_usage WHERE assignment_id = $1 AND period_end <= $2
               ORDER BY period_start DESC, revision DESC LIMIT 1""",
            assignment_id,
            period_start,
        )
        return (row["period_end"], _lots(row["carried"])) if row else None

    async def bucket_entries(
        self, assignment_id: UUID, start: date, before: date
    ) -> dict[date, list[tuple[UUID, Decimal]]]:
        """The bucket entries of the bucket periods starting in ``[start, before)``, per period in time order."""
        rows = await self._conn.fetch(
            """SELECT period_start, record_id, quantity FROM rated_records
               WHERE assignment_id = $1 AND disposition = 'bucket' AND period_start >= $2 AND period_start < $3
               ORDER BY period_start, occurred_at, record_id""",
            assignment_id,
            start,
            before,
        )
        out: dict[date, list[tuple[UUID, Decimal]]] = {}
        for r in rows:
            out.setdefault(r["period_start"], []).append((r["record_id"], r["quantity"]))
        return out

    async def save_bucket(
        self,
        tenant_id: UUID,
        company_id: UUID,
        assignment_id: UUID,
        start: date,
        end: date,
        s: Settlement,
        revision: int = 1,
    ) -> None:
        await self._conn.execute(
            """INSERT INTO bucket_usage VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
               ON CONFLICT DO NOTHING""",
            tenant_id,
            assignment_id,
            start,
            end,
            company_id,
            s.allocation,
            s.rolled_in,
            s.used,
            s.overage,
            s.remaining,
            s.rolled_out_hours,
            s.expired,
            carried_doc(s),
            revision,
        )

    async def bucket_usage(self, company_id: UUID) -> list[dict[str, Any]]:
        """Each bucket period's usage record (its latest settlement, with its ``revision``)."""
        rows = await self._conn.fetch(
            """SELECT DISTINCT ON (assignment_id, period_start) * FROM bucket_usage WHERE company_id = $1
               ORDER BY assignment_id, period_start, revision DESC""",
            company_id,
        )
        return [dict(r) for r in rows]

    # -- thresholds ----------------------------------------------------------------------------
    async def claim_crossings(
        self, tenant_id: UUID, subject: str, period_start: date, levels: Sequence[Decimal]
    ) -> list[Decimal]:
        rows = await self._conn.fetch(
            """INSERT INTO threshold_crossings SELECT $1, $2, $3, unnest($4::numeric[])
               ON CONFLICT DO NOTHING RETURNING level""",
            tenant_id,
            subject,
            period_start,
            list(levels),
        )
        return sorted(r["level"] for r in rows)

    async def take_unrated(self, limit: int = 5000) -> list[dict[str, Any]]:
        """Remove and return parked records (they are parked again if still unpriceable)."""
        rows = await self._conn.fetch(
            """DELETE FROM unrated_records WHERE record_id IN (
                   SELECT record_id FROM unrated_records ORDER BY record_id LIMIT $1 FOR UPDATE)
               RETURNING document""",
            limit,
        )
        return [r["document"] for r in rows]

    async def unrated(self, company_id: UUID | None, limit: int) -> list[dict[str, Any]]:
        """Parked records (the client's, or all), oldest first, with the reason rating cannot price them."""
        rows = await self._conn.fetch(
            """SELECT record_id, reason, document FROM unrated_records
               WHERE $1::uuid IS NULL OR document ->> 'company_id' = $1::uuid::text
               ORDER BY coalesce(document ->> 'occurred_at', document ->> 'start_time'), record_id LIMIT $2""",
            company_id,
            limit,
        )
        return [dict(r) for r in rows]

    async def not_charged(self, company_id: UUID, period_start: date) -> list[dict[str, Any]]:
        """The client's records of a period that rating recorded and will never charge, with the note why."""
        rows = await self._conn.fetch(
            """SELECT record_id, record_type, disposition, note, quantity, occurred_at, document FROM rated_records
               WHERE company_id = $1 AND period_start = $2
                 AND disposition IN ('non_billable', 'not_billed_status', 'in_bundle')
               ORDER BY occurred_at, record_id""",
            company_id,
            period_start,
        )
        return [dict(r) for r in rows]

    async def save_unrated(self, tenant_id: UUID, items: Sequence[tuple[UUID, str, dict[str, Any]]]) -> None:
        await self._conn.executemany(
            """INSERT INTO unrated_records VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, record_id) DO UPDATE SET reason = EXCLUDED.reason""",
            [(tenant_id, rid, reason, doc) for rid, reason, doc in items],
        )
