"""Metering persistence (asyncpg, multi-row SQL): the catalog read model, approval rules, the idempotency
keys, the monthly raw-record tables and the dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.metering.domain.acceptance import CompanyRef, ServiceRef
from shared.contracts.approvals import ApprovalRuleSet
from shared.contracts.catalog import AssignmentState, CompanyState, ServiceState, UserState
from shared.db.pool import DbConnection

TABLE = {"usage": "usage_records", "time": "time_entries"}
TIME_COLUMN = {"usage": "occurred_at", "time": "start_time"}
ID_COLUMN = {"usage": "event_id", "time": "entry_id"}


@dataclass(slots=True)
class BatchContext:
    """What `MeteringRepository.batch_context` reads for a batch."""

    tenant_known: bool
    rules: ApprovalRuleSet | None
    companies: dict[tuple[str, str], CompanyRef]
    services: dict[str, ServiceRef]
    users: dict[str, UUID]
    plans: dict[UUID, list[tuple[date, date | None]]]  # each found client's assignments (start, end)
    timezone: str = "UTC"  # the tenant's: the day a record's plan is judged on
    live: bool = False
    clock: datetime | None = None  # the tenant's billing time (last tick), if any


@dataclass(frozen=True, slots=True)
class KeyRow:
    source: str
    external_id: str
    record_id: UUID
    fingerprint: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row of usage_records or time_entries (the fields the other type lacks are None)."""

    record_id: UUID
    occurred_at: datetime  # start_time for time entries
    source: str
    external_id: str
    fingerprint: str
    status: str
    reason: str | None
    reason_code: str | None
    company_ref: str
    service_ref: str
    company_id: UUID | None
    service_id: UUID | None
    no_active_plan: bool
    request_id: UUID | None
    payload: str  # the record as JSON text (Postgres parses it into jsonb; no Python round trip)
    # usage
    kind: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    # time
    end_time: datetime | None = None
    user_ref: str | None = None
    user_id: UUID | None = None
    hours: Decimal | None = None
    billable: bool | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    dead_letter_id: UUID
    record_type: str
    channel: str
    source: str | None
    external_id: str | None
    error_class: str
    code: str
    field: str | None
    reason: str
    payload: str


def month_of(at: datetime) -> datetime:
    """The first instant of ``at``'s UTC month (partitions are cut in UTC, whatever offset was sent)."""
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class MeteringRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model -------------------------------------------------------------------
    async def save_tenant(self, tenant_id: UUID, version: int, timezone: str, mode: str) -> bool:
        """Newer versions win; a row from before metering kept time zones and modes takes those of any version."""
        return bool(
            await self._conn.fetchval(
                """INSERT INTO known_tenants (tenant_id, version, timezone, mode) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (tenant_id) DO UPDATE
                   SET version = greatest(known_tenants.version, EXCLUDED.version), timezone = EXCLUDED.timezone,
                       mode = EXCLUDED.mode
                   WHERE known_tenants.version < EXCLUDED.version OR known_tenants.timezone IS NULL
                      OR known_tenants.mode IS NULL RETURNING 1""",
                tenant_id,
                version,
                timezone,
                mode,
            )
        )

    async def save_clock(self, tenant_id: UUID, now: datetime) -> None:
        """The tenant's billing time only moves forward (a tick for a tenant not known yet waits for it)."""
        await self._conn.execute(
            "UPDATE known_tenants SET clock = greatest(clock, $2) WHERE tenant_id = $1", tenant_id, now
        )

    async def save_company(self, c: CompanyState, version: int) -> bool:
        updated = await self._conn.fetchval(
            """INSERT INTO companies VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, company_id) DO UPDATE
               SET company_ref = EXCLUDED.company_ref, version = EXCLUDED.version
               WHERE companies.version < EXCLUDED.version RETURNING 1""",
            c.tenant_id,
            c.company_id,
            c.company_ref,
            version,
        )
        if updated:
            await self._conn.execute(
                "DELETE FROM company_refs WHERE tenant_id = $1 AND company_id = $2", c.tenant_id, c.company_id
            )
            await self._conn.executemany(
                "INSERT INTO company_refs VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                [(c.tenant_id, r.source, r.ref, c.company_id) for r in c.refs],
            )
        return bool(updated)

    async def save_service(self, s: ServiceState, version: int) -> bool:
        return bool(
            await self._conn.fetchval(
                """INSERT INTO services VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, service_id)
                   DO UPDATE SET code = EXCLUDED.code, unit = EXCLUDED.unit, service_type = EXCLUDED.service_type,
                       version = EXCLUDED.version WHERE services.version < EXCLUDED.version RETURNING 1""",
                s.tenant_id,
                s.service_id,
                s.code,
                s.unit,
                s.service_type.value,
                version,
            )
        )

    async def save_assignment(self, a: AssignmentState, version: int, *, deleted: bool) -> bool:
        return bool(
            await self._conn.fetchval(
                """INSERT INTO assignments VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (tenant_id, assignment_id) DO UPDATE
                   SET company_id = EXCLUDED.company_id, start_date = EXCLUDED.start_date,
                       end_date = EXCLUDED.end_date, deleted = EXCLUDED.deleted, version = EXCLUDED.version
                   WHERE assignments.version < EXCLUDED.version RETURNING 1""",
                a.tenant_id,
                a.assignment_id,
                a.company_id,
                a.start_date,
                a.end_date,
                deleted,
                version,
            )
        )

    async def save_user(self, u: UserState, version: int) -> None:
        await self._conn.execute(
            """INSERT INTO users VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO UPDATE
               SET user_ref = EXCLUDED.user_ref, version = EXCLUDED.version WHERE users.version < EXCLUDED.version""",
            u.tenant_id,
            u.user_id,
            u.user_ref if u.active else None,
            version,
        )

    async def batch_context(
        self, tenant_id: UUID, pairs: set[tuple[str, str]], codes: set[str], user_refs: set[str]
    ) -> BatchContext:
        """Everything a batch is decided against, in one statement: whether the tenant is known, its approval
        rules, the clients by (source, ref) (the source's own ref first, else the primary ref), the services by
        code, the users by ref, and the plan assignments of the clients found (for ``no_active_plan``)."""
        rows = await self._conn.fetch(
            """
            WITH found AS (
                SELECT q.source, q.ref, c.company_id, c.company_ref
                FROM unnest($2::text[], $3::text[]) AS q(source, ref)
                JOIN LATERAL (
                    SELECT c.company_id, c.company_ref, 0 AS pref FROM company_refs r
                      JOIN companies c ON c.tenant_id = r.tenant_id AND c.company_id = r.company_id
                     WHERE r.tenant_id = $1 AND r.source = q.source AND r.ref = q.ref
                    UNION ALL
                    SELECT c.company_id, c.company_ref, 1 FROM companies c
                     WHERE c.tenant_id = $1 AND c.company_ref = q.ref
                    ORDER BY pref LIMIT 1
                ) c ON true
            )
            SELECT 'tenant' AS t, mode AS a, NULL AS b, NULL::uuid AS id, timezone AS c,
                   NULL::date AS d1, NULL::date AS d2, jsonb_build_object('clock', clock) AS doc
              FROM known_tenants WHERE tenant_id = $1
            UNION ALL SELECT 'rules', NULL, NULL, NULL, NULL, NULL, NULL, rule_set
              FROM approval_rules WHERE tenant_id = $1
            UNION ALL SELECT 'company', source, ref, company_id, company_ref, NULL, NULL, NULL FROM found
            UNION ALL SELECT 'service', code, unit, service_id, service_type, NULL, NULL, NULL FROM services
              WHERE tenant_id = $1 AND code = ANY($4::text[])
            UNION ALL SELECT 'user', user_ref, NULL, user_id, NULL, NULL, NULL, NULL FROM users
              WHERE tenant_id = $1 AND user_ref = ANY($5::text[])
            UNION ALL SELECT 'plan', NULL, NULL, company_id, NULL, start_date, end_date, NULL FROM assignments
              WHERE tenant_id = $1 AND NOT deleted AND company_id IN (SELECT company_id FROM found)
            """,
            tenant_id,
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            list(codes),
            list(user_refs),
        )
        ctx = BatchContext(False, None, {}, {}, {}, {})
        for r in rows:
            t = r["t"]
            if t == "tenant":
                ctx.tenant_known = True
                ctx.timezone = r["c"] or "UTC"
                ctx.live = r["a"] == "live"
                clock = r["doc"].get("clock")
                ctx.clock = datetime.fromisoformat(clock) if clock else None
            elif t == "rules":
                ctx.rules = ApprovalRuleSet.model_validate(r["doc"])
            elif t == "company":
                ctx.companies[(r["a"], r["b"])] = CompanyRef(r["id"], r["c"])
            elif t == "service":
                ctx.services[r["a"]] = ServiceRef(r["id"], r["b"], r["c"])
            elif t == "user":
                ctx.users[r["a"]] = r["id"]
            else:
                ctx.plans.setdefault(r["id"], []).append((r["d1"], r["d2"]))
        return ctx

    async def clear_no_plan(self, tenant_id: UUID, a: AssignmentState) -> int:
        """Records of the assignment's client in its dates no longer lack a plan."""
        total = 0
        for rt in ("usage", "time"):
            at = TIME_COLUMN[rt]
            status = await self._conn.execute(
                f"""WITH tz AS (SELECT coalesce((SELECT timezone FROM known_tenants WHERE tenant_id = $1), 'UTC') AS z)
                    UPDATE {TABLE[rt]} SET no_active_plan = false FROM tz
                    WHERE tenant_id = $1 AND no_active_plan AND company_id = $2
                      AND ({at} AT TIME ZONE tz.z)::date >= $3
                      AND ($4::date IS NULL OR ({at} AT TIME ZONE tz.z)::date < $4)""",
                tenant_id,
                a.company_id,
                a.start_date,
                a.end_date,
            )
            total += int(status.split()[-1])
        return total

    async def clear_no_plan_covered(self, tenant_id: UUID) -> int:
        """Records flagged without a plan that an assignment covers on their tenant-local day: when the tenant's
        time zone arrives after its assignments (they travel on different partitions), the days they were first
        judged on were UTC days."""
        total = 0
        for rt in ("usage", "time"):
            at = TIME_COLUMN[rt]
            status = await self._conn.execute(
                f"""WITH tz AS (SELECT coalesce((SELECT timezone FROM known_tenants WHERE tenant_id = $1), 'UTC') AS z)
                    UPDATE {TABLE[rt]} r SET no_active_plan = false FROM tz
                    WHERE r.tenant_id = $1 AND r.no_active_plan AND EXISTS (
                        SELECT 1 FROM assignments a
                         WHERE a.tenant_id = r.tenant_id AND a.company_id = r.company_id AND NOT a.deleted
                           AND (r.{at} AT TIME ZONE tz.z)::date >= a.start_date
                           AND (a.end_date IS NULL OR (r.{at} AT TIME ZONE tz.z)::date < a.end_date))""",
                tenant_id,
            )
            total += int(status.split()[-1])
        return total

    # -- approval rules -----------------------------------------------------------------------
    async def replace_approval_rules(self, rule_set: ApprovalRuleSet) -> bool:
        """Keep ``rule_set`` when it is newer than the one held; True when it replaced it."""
        replaced = await self._conn.fetchval(
            """INSERT INTO approval_rules (tenant_id, version, rule_set) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, rule_set = EXCLUDED.rule_set
               WHERE approval_rules.version < EXCLUDED.version
               RETURNING 1""",
            rule_set.tenant_id,
            rule_set.version,
            rule_set.model_dump(mode="json"),
        )
        return replaced is not None

    async def approval_rules(self, tenant_id: UUID) -> dict[str, Any] | None:
        """The rule set metering applies to the tenant's records (its copy of approvals.rules.v1), if any."""
        row = await self._conn.fetchrow("SELECT rule_set FROM approval_rules WHERE tenant_id = $1", tenant_id)
        return dict(row["rule_set"]) if row else None

    # -- idempotency keys ---------------------------------------------------------------------
    async def fingerprints(
        self, tenant_id: UUID, record_type: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, UUID]]:
        rows = await self._conn.fetch(
            """SELECT k.source, k.external_id, k.fingerprint, k.record_id FROM record_keys k
               JOIN unnest($3::text[], $4::text[]) AS q(source, external_id)
                 ON k.source = q.source AND k.external_id = q.external_id
               WHERE k.tenant_id = $1 AND k.record_type = $2""",
            tenant_id,
            record_type,
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["source"], r["external_id"]): (r["fingerprint"], r["record_id"]) for r in rows}

    # -- raw records --------------------------------------------------------------------------
    async def ensure_partitions(self, record_type: str, times: Sequence[datetime]) -> None:
        """Make sure the months of ``times`` have their partitions, in this transaction. Asked every time, never
        remembered: a partition made in this transaction vanishes if it rolls back, and one that an earlier call
        of the same transaction made looks just like a committed one; a process that remembered either failed
        every later record of that month with "no partition of relation" until it restarted (found by the
        simulator). The check is one function call of a few catalog lookups."""
        months = sorted({month_of(t) for t in times})
        if months:
            table = TABLE[record_type]
            await self._conn.execute("SELECT ensure_month_partitions($1, $2::timestamptz[])", table, months)

    async def claim_and_store(
        self, tenant_id: UUID, record_type: str, keys: Sequence[KeyRow], rows: Sequence[RawRow], now: datetime
    ) -> set[tuple[str, str]]:
        """Claim the idempotency keys and store the rows of the keys that were new, in one statement (``rows``
        pair with ``keys`` by (source, external id)); returns the (source, external id) that were new."""
        if not keys:
            return set()
        await self.ensure_partitions(record_type, [r.occurred_at for r in rows])
        raw, insert, args = _raw_statement(record_type, rows, first=9)
        inserted = await self._conn.fetch(
            f"""
            WITH raw AS ({raw}), claimed AS (
                INSERT INTO record_keys (tenant_id, record_type, source, external_id, record_id, fingerprint,
                                         occurred_at, received_at)
                SELECT $1, $3, k.*, $2
                FROM unnest($4::text[], $5::text[], $6::uuid[], $7::text[], $8::timestamptz[]) AS k
                ON CONFLICT DO NOTHING
                RETURNING source, external_id
            ), stored AS (
                {insert} SELECT $1, $2, raw.* FROM raw
                JOIN claimed ON claimed.source = raw.source AND claimed.external_id = raw.external_id
            )
            SELECT source, external_id FROM claimed
            """,
            tenant_id,
            now,
            record_type,
            [k.source for k in keys],
            [k.external_id for k in keys],
            [k.record_id for k in keys],
            [k.fingerprint for k in keys],
            [k.occurred_at for k in keys],
            *args,
        )
        return {(r["source"], r["external_id"]) for r in inserted}

    async def unmapped(self, tenant_id: UUID, record_type: str, limit: int = 5000) -> list[dict[str, Any]]:
        at = TIME_COLUMN[record_type]
        rows = await self._conn.fetch(
            f"""SELECT payload FROM {TABLE[record_type]} WHERE tenant_id = $1 AND status = 'unmapped'
                ORDER BY {at} LIMIT $2 FOR UPDATE""",
            tenant_id,
            limit,
        )
        return [r["payload"] for r in rows]

    async def settle(self, tenant_id: UUID, record_type: str, rows: Sequence[RawRow]) -> None:
        """Write a new decision on records that were unmapped (status, reason, catalog ids, request)."""
        if not rows:
            return
        extra = ", user_id = u.user_id" if record_type == "time" else ""
        await self._conn.execute(
            f"""UPDATE {TABLE[record_type]} t SET status = u.status, reason = u.reason, reason_code = u.code,
                       company_id = u.company_id, service_id = u.service_id, no_active_plan = u.no_plan,
                       request_id = u.request_id{extra}
                FROM unnest($2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::uuid[],
                            $8::uuid[], $9::bool[], $10::uuid[], $11::uuid[])
                     AS u(record_id, at, status, reason, code, company_id, service_id, no_plan, request_id, user_id)
                WHERE t.tenant_id = $1 AND t.record_id = u.record_id AND t.{TIME_COLUMN[record_type]} = u.at""",
            tenant_id,
            [r.record_id for r in rows],
            [r.occurred_at for r in rows],
            [r.status for r in rows],
            [r.reason for r in rows],
            [r.reason_code for r in rows],
            [r.company_id for r in rows],
            [r.service_id for r in rows],
            [r.no_active_plan for r in rows],
            [r.request_id for r in rows],
            [r.user_id for r in rows],
        )

    async def held(self, tenant_id: UUID, record_type: str, request_id: UUID) -> Any | None:
        """The held record a request was sent for, locked; None when none waits on it."""
        return await self._conn.fetchrow(
            f"""SELECT * FROM {TABLE[record_type]}
                WHERE tenant_id = $1 AND request_id = $2 AND status = 'held' FOR UPDATE""",
            tenant_id,
            request_id,
        )

    async def decide_held(
        self, tenant_id: UUID, record_type: str, row: Any, *, status: str, reason: str | None, decided_by: str
    ) -> None:
        at = TIME_COLUMN[record_type]
        await self._conn.execute(
            f"""UPDATE {TABLE[record_type]} SET status = $4, reason = $5, decided_by = $6,
                       reason_code = CASE WHEN $4 = 'rejected' THEN 'approval_rejected' END
                WHERE tenant_id = $1 AND record_id = $2 AND {at} = $3""",
            tenant_id,
            row["record_id"],
            row[at],
            status,
            reason,
            decided_by,
        )

    # -- dead letters -------------------------------------------------------------------------
    async def insert_dead_letters(self, tenant_id: UUID, rows: Sequence[DeadLetterRow], now: datetime) -> None:
        if not rows:
            return
        await self._conn.execute(
            """INSERT INTO dead_letters (tenant_id, received_at, dead_letter_id, record_type, channel, source,
                                         external_id, error_class, code, field, reason, payload)
               SELECT $1, $2, * FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                                            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
               ON CONFLICT (tenant_id, dead_letter_id) DO UPDATE
               SET redriven_at = NULL, redrive_result = NULL, reason = EXCLUDED.reason, code = EXCLUDED.code,
                   field = EXCLUDED.field, error_class = EXCLUDED.error_class""",
            tenant_id,
            now,
            [r.dead_letter_id for r in rows],
            [r.record_type for r in rows],
            [r.channel for r in rows],
            [r.source for r in rows],
            [r.external_id for r in rows],
            [r.error_class for r in rows],
            [r.code for r in rows],
            [r.field for r in rows],
            [r.reason for r in rows],
            [r.payload for r in rows],
        )

    async def dead_letter(self, tenant_id: UUID, dead_letter_id: UUID) -> Any | None:
        return await self._conn.fetchrow(
            "SELECT * FROM dead_letters WHERE tenant_id = $1 AND dead_letter_id = $2 FOR UPDATE",
            tenant_id,
            dead_letter_id,
        )

    async def mark_redriven(self, tenant_id: UUID, dead_letter_id: UUID, result: str, now: datetime) -> None:
        await self._conn.execute(
            """UPDATE dead_letters SET redriven_at = $3, redrive_result = $4
               WHERE tenant_id = $1 AND dead_letter_id = $2""",
            tenant_id,
            dead_letter_id,
            now,
            result,
        )

    async def dead_letters(self, tenant_id: UUID, *, include_redriven: bool, limit: int) -> list[Any]:
        return list(
            await self._conn.fetch(
                """SELECT * FROM dead_letters WHERE tenant_id = $1 AND ($2 OR redriven_at IS NULL)
                   ORDER BY received_at DESC, dead_letter_id LIMIT $3""",
                tenant_id,
                include_redriven,
                limit,
            )
        )

    async def dead_letters_of(self, tenant_id: UUID, record_type: str, source: str, external_id: str) -> list[Any]:
        return list(
            await self._conn.fetch(
                """SELECT * FROM dead_letters WHERE tenant_id = $1 AND record_type = $2 AND source = $3
                   AND external_id = $4 ORDER BY received_at""",
                tenant_id,
                record_type,
                source,
                external_id,
            )
        )

    # -- queries ------------------------------------------------------------------------------
    async def stored(self, tenant_id: UUID, record_type: str, source: str, external_id: str) -> Any | None:
        at = TIME_COLUMN[record_type]
        return await self._conn.fetchrow(
            f"""SELECT r.* FROM record_keys k JOIN {TABLE[record_type]} r
                  ON r.tenant_id = k.tenant_id AND r.record_id = k.record_id AND r.{at} = k.occurred_at
                WHERE k.tenant_id = $1 AND k.record_type = $2 AND k.source = $3 AND k.external_id = $4""",
            tenant_id,
            record_type,
            source,
            external_id,
        )

    async def records(
        self,
        tenant_id: UUID,
        record_type: str,
        *,
        status: str | None = None,
        company_id: UUID | None = None,
        service_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        no_active_plan: bool | None = None,
        limit: int = 1000,
    ) -> list[Any]:
        at = TIME_COLUMN[record_type]
        return list(
            await self._conn.fetch(
                f"""SELECT * FROM {TABLE[record_type]}
                    WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
                      AND ($3::uuid IS NULL OR company_id = $3) AND ($4::uuid IS NULL OR service_id = $4)
                      AND ($5::timestamptz IS NULL OR {at} >= $5) AND ($6::timestamptz IS NULL OR {at} < $6)
                      AND ($7::bool IS NULL OR no_active_plan = $7)
                    ORDER BY {at}, record_id LIMIT $8""",
                tenant_id,
                status,
                company_id,
                service_id,
                start,
                end,
                no_active_plan,
                limit,
            )
        )

    async def last_snapshot_before(
        self, tenant_id: UUID, company_id: UUID, service_id: UUID, start: datetime
    ) -> Any | None:
        """The snapshot in force at ``start``: the last accepted one before it (for the same client and service)."""
        return await self._conn.fetchrow(
            """SELECT * FROM usage_records WHERE tenant_id = $1 AND company_id = $2 AND service_id = $3
               AND status = 'accepted' AND kind = 'snapshot' AND occurred_at < $4
               ORDER BY occurred_at DESC LIMIT 1""",
            tenant_id,
            company_id,
            service_id,
            start,
        )

    async def company_id_of(self, tenant_id: UUID, company_ref: str) -> UUID | None:
        value = await self._conn.fetchval(
            "SELECT company_id FROM companies WHERE tenant_id = $1 AND company_ref = $2", tenant_id, company_ref
        )
        return value if isinstance(value, UUID) else None

    async def service_id_of(self, tenant_id: UUID, code: str) -> UUID | None:
        value = await self._conn.fetchval(
            "SELECT service_id FROM services WHERE tenant_id = $1 AND code = $2", tenant_id, code
        )
        return value if isinstance(value, UUID) else None


_RAW_COLUMNS = """record_id, {at}, source, {ext}, fingerprint, status, reason, reason_code, company_ref, service_ref,
    company_id, service_id, no_active_plan, request_id, payload"""
_RAW_TYPES = [
    "uuid",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "uuid",
    "uuid",
    "bool",
    "uuid",
    "text",
]
_EXTRA = {
    "usage": (("kind", "quantity", "unit"), ["text", "numeric", "text"]),
    "time": (
        ("end_time", "user_ref", "user_id", "hours", "billable"),
        ["timestamptz", "text", "uuid", "numeric", "bool"],
    ),
}
_RAW_NAMES = [
    "record_id",
    "occurred_at",
    "source",
    "external_id",
    "fingerprint",
    "status",
    "reason",
    "reason_code",
    "company_ref",
    "service_ref",
    "company_id",
    "service_id",
    "no_active_plan",
    "request_id",
    "payload",
]


def _raw_statement(record_type: str, rows: Sequence[RawRow], *, first: int) -> tuple[str, str, list[list[Any]]]:
    """For ``rows`` as parameter arrays ``$first``…: the ``SELECT`` of their columns (named as ``RawRow``'s,
    ``payload`` as jsonb), the ``INSERT INTO <table> (tenant_id, received_at, …)`` head that takes them after a
    tenant and a received-at, and the arrays."""
    extra_names, extra_types = _EXTRA[record_type]
    names = [*_RAW_NAMES, *extra_names]
    arrays = ", ".join(f"${first + i}::{t}[]" for i, t in enumerate([*_RAW_TYPES, *extra_types]))
    cols = ", ".join("payload::jsonb AS payload" if n == "payload" else n for n in names)
    select = f"SELECT {cols} FROM unnest({arrays}) AS u({', '.join(names)})"
    head = _RAW_COLUMNS.format(at=TIME_COLUMN[record_type], ext=ID_COLUMN[record_type])
    insert = f"INSERT INTO {TABLE[record_type]} (tenant_id, received_at, {head}, {', '.join(extra_names)})"
    return select, insert, [[getattr(r, n) for r in rows] for n in names]
