"""Approvals' SQL. Every statement runs in the caller's transaction with the tenant set (RLS)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.approvals.domain.workflow import Status, StepDecision, Workflow
from shared.contracts.approvals import (
    ApprovalOutcome,
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
)
from shared.contracts.base import canonical_fingerprint
from shared.contracts.catalog import CatalogEvent, TenantState, UserState
from shared.db.pool import DbConnection


def request_fingerprint(request: ApprovalRequest) -> str:
    """What makes two requests with one id the same request (timestamps and wording may differ on a retry)."""
    essentials = {"item_type", "item_id", "trigger_field", "trigger_value", "currency"}
    return canonical_fingerprint(ApprovalRequest.model_construct(**request.model_dump(include=essentials)))


class ApprovalsRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    # -- catalog read model and billing time ----------------------------------------------------------------
    async def save_catalog(self, event: CatalogEvent) -> bool:
        """Upsert a tenant or user where the version is newer; True when a tenant was seen for the first time."""
        state = event.state
        if isinstance(state, TenantState):
            status = await self._conn.execute(
                """INSERT INTO tenants VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE
                   SET version = EXCLUDED.version WHERE tenants.version < EXCLUDED.version""",
                state.tenant_id,
                event.version,
            )
            return status == "INSERT 0 1"
        if isinstance(state, UserState):
            await self._conn.execute(
                """INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, user_id) DO UPDATE
                   SET email = EXCLUDED.email, user_ref = EXCLUDED.user_ref, role = EXCLUDED.role,
                       active = EXCLUDED.active, version = EXCLUDED.version
                   WHERE users.version < EXCLUDED.version""",
                state.tenant_id,
                state.user_id,
                state.email,
                state.user_ref,
                state.role.value,
                state.active and not event.deleted,
                event.version,
            )
        return False

    async def user_named(self, ref: str) -> UUID | None:
        """The catalog user a requester reference names: ``user:<id>``, a user id, a PSA user_ref, or an email."""
        try:
            return UUID(ref.removeprefix("user:"))
        except ValueError:
            pass
        found: UUID | None = await self._conn.fetchval(
            "SELECT user_id FROM users WHERE user_ref = $1 OR lower(email) = lower($1) ORDER BY user_id LIMIT 1", ref
        )
        return found

    async def advance_clock(self, tenant_id: UUID, now: datetime) -> datetime:
        """Record a tick (billing time only moves forward); returns the tenant's billing time after it."""
        value: datetime = await self._conn.fetchval(
            """INSERT INTO clocks VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE
               SET now = greatest(clocks.now, EXCLUDED.now) RETURNING now""",
            tenant_id,
            now,
        )
        return value

    async def billing_now(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval("SELECT now FROM clocks")
        return value

    # -- rules ----------------------------------------------------------------------------------------------
    async def rules(self, *, lock: bool = False) -> tuple[int, list[ApprovalRule]]:
        """The tenant's set version (0 before any) and the current version of each rule."""
        version = await self._conn.fetchval("SELECT version FROM rule_sets" + (" FOR UPDATE" if lock else ""))
        rows = await self._conn.fetch("""SELECT DISTINCT ON (rule_id) rule FROM rules ORDER BY rule_id, version DESC""")
        rules = [ApprovalRule.model_validate(r["rule"]) for r in rows]
        return int(version or 0), sorted(rules, key=lambda r: (r.item_type.value, r.threshold_field, r.threshold))

    async def rule(self, rule_id: UUID) -> ApprovalRule | None:
        doc = await self._conn.fetchval(
            "SELECT rule FROM rules WHERE rule_id = $1 ORDER BY version DESC LIMIT 1", rule_id
        )
        return ApprovalRule.model_validate(doc) if doc else None

    async def add_rules(self, rules: list[ApprovalRule], *, actor: str) -> None:
        await self._conn.executemany(
            "INSERT INTO rules VALUES ($1, $2, $3, $4, $5)",
            [(r.tenant_id, r.rule_id, r.version, r.model_dump(mode="json"), actor) for r in rules],
        )

    async def bump_rule_set(self, tenant_id: UUID) -> int:
        value: int = await self._conn.fetchval(
            """INSERT INTO rule_sets VALUES ($1, 1) ON CONFLICT (tenant_id) DO UPDATE
               SET version = rule_sets.version + 1 RETURNING version""",
            tenant_id,
        )
        return value

    async def has_rule_set(self) -> bool:
        return bool(await self._conn.fetchval("SELECT EXISTS (SELECT 1 FROM rule_sets)"))

    async def lock_tenant_rules(self, tenant_id: UUID) -> None:
        """Serialize creating a tenant's first rules (a request and the tenant event may race)."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('approvals-rules:' || $1))", str(tenant_id))

    # -- requests -------------------------------------------------------------------------------------------
    async def fingerprints(self, request_ids: list[UUID]) -> dict[UUID, str]:
        rows = await self._conn.fetch(
            "SELECT request_id, fingerprint FROM requests WHERE request_id = ANY($1::uuid[])", request_ids
        )
        return {r["request_id"]: r["fingerprint"] for r in rows}

    async def supersede_pending(self, item_type: str, item_id: str, *, by: UUID) -> list[UUID]:
        rows = await self._conn.fetch(
            """UPDATE requests SET status = 'superseded', due_at = NULL, decided_by = $3
               WHERE item_type = $1 AND item_id = $2 AND status = 'pending' RETURNING request_id""",
            item_type,
            item_id,
            f"request:{by}",
        )
        return [r["request_id"] for r in rows]

    async def insert_workflow(self, workflow: Workflow, *, received_at: datetime) -> None:
        r = workflow.request
        await self._conn.execute(
            """INSERT INTO requests (tenant_id, request_id, item_type, item_id, fingerprint, request, rule_id,
                                     rule_version, steps, requester_user_id, status, current_step, roles,
                                     escalated, step_started_at, due_at, received_at, decided_by, decided_at,
                                     subject_user_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)""",
            r.tenant_id,
            r.request_id,
            r.item_type.value,
            r.item_id,
            request_fingerprint(r),
            r.model_dump(mode="json"),
            workflow.rule_id,
            workflow.rule_version,
            [s.model_dump(mode="json") for s in workflow.steps],
            workflow.requester_user_id,
            workflow.status.value,
            workflow.current_step,
            list(workflow.roles),
            workflow.escalated,
            workflow.step_started_at,
            workflow.due_at,
            received_at,
            *_final(workflow),
            workflow.subject_user_id,
        )

    async def insert_released(
        self, request: ApprovalRequest, *, decided_by: str, decided_at: datetime, received_at: datetime
    ) -> None:
        """A request no rule holds: stored approved, with no steps, so its history shows why."""
        await self._conn.execute(
            """INSERT INTO requests (tenant_id, request_id, item_type, item_id, fingerprint, request, steps,
                                     status, current_step, roles, received_at, decided_by, decided_at)
               VALUES ($1, $2, $3, $4, $5, $6, '[]', 'approved', 1, '{}', $7, $8, $9)""",
            request.tenant_id,
            request.request_id,
            request.item_type.value,
            request.item_id,
            request_fingerprint(request),
            request.model_dump(mode="json"),
            received_at,
            decided_by,
            decided_at,
        )

    async def update_workflow(self, workflow: Workflow) -> None:
        await self._conn.execute(
            """UPDATE requests SET status = $2, current_step = $3, roles = $4, escalated = $5,
                                   step_started_at = $6, due_at = $7, decided_by = $8, decided_at = $9
               WHERE request_id = $1""",
            workflow.request.request_id,
            workflow.status.value,
            workflow.current_step,
            list(workflow.roles),
            workflow.escalated,
            workflow.step_started_at,
            workflow.due_at,
            *_final(workflow),
        )

    async def add_step_decision(self, request_id: UUID, made: StepDecision) -> None:
        await self._conn.execute(
            "INSERT INTO step_decisions VALUES (current_setting('app.tenant_id')::uuid, $1, $2, $3, $4, $5, $6, $7)",
            request_id,
            made.step,
            made.outcome.value,
            made.decided_by,
            made.role,
            made.comment,
            made.decided_at,
        )

    async def workflow(self, request_id: UUID, *, lock: bool = False) -> Workflow | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM requests WHERE request_id = $1" + (" FOR UPDATE" if lock else ""), request_id
        )
        if row is None:
            return None
        return (await self._with_decisions([row]))[0]

    async def due(self, now: datetime) -> list[Workflow]:
        rows = await self._conn.fetch(
            """SELECT * FROM requests WHERE status = 'pending' AND due_at <= $1
               ORDER BY due_at, request_id FOR UPDATE""",
            now,
        )
        return await self._with_decisions(rows)

    async def listing(
        self,
        *,
        status: str | None,
        item_type: str | None,
        roles: list[str] | None,
        after: UUID | None,
        limit: int,
    ) -> list[Workflow]:
        rows = await self._conn.fetch(
            """SELECT * FROM requests
               WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR item_type = $2)
                 AND ($3::text[] IS NULL OR roles && $3) AND ($4::uuid IS NULL OR request_id > $4)
               ORDER BY request_id LIMIT $5""",
            status,
            item_type,
            roles,
            after,
            limit,
        )
        return await self._with_decisions(rows)

    async def of_item(self, item_type: str, item_id: str) -> list[Workflow]:
        rows = await self._conn.fetch(
            "SELECT * FROM requests WHERE item_type = $1 AND item_id = $2 ORDER BY received_at, request_id",
            item_type,
            item_id,
        )
        return await self._with_decisions(rows)

    async def _with_decisions(self, rows: list[Any]) -> list[Workflow]:
        if not rows:
            return []
        decided = await self._conn.fetch(
            "SELECT * FROM step_decisions WHERE request_id = ANY($1::uuid[]) ORDER BY request_id, step",
            [r["request_id"] for r in rows],
        )
        by_request: dict[UUID, list[StepDecision]] = {}
        for d in decided:
            by_request.setdefault(d["request_id"], []).append(
                StepDecision(
                    step=d["step"],
                    outcome=ApprovalOutcome(d["outcome"]),
                    decided_by=d["decided_by"],
                    role=d["role"],
                    comment=d["comment"],
                    decided_at=d["decided_at"],
                )
            )
        return [_workflow(r, tuple(by_request.get(r["request_id"], []))) for r in rows]


def _final(workflow: Workflow) -> tuple[str | None, datetime | None]:
    if workflow.status in (Status.APPROVED, Status.REJECTED) and workflow.decisions:
        last = workflow.decisions[-1]
        return last.decided_by, last.decided_at
    return None, None


def _workflow(row: Any, decisions: tuple[StepDecision, ...]) -> Workflow:
    return Workflow(
        request=ApprovalRequest.model_validate(row["request"]),
        rule_id=row["rule_id"],
        rule_version=row["rule_version"],
        steps=tuple(ApprovalStep.model_validate(s) for s in row["steps"]),
        requester_user_id=row["requester_user_id"],
        status=Status(row["status"]),
        current_step=row["current_step"],
        roles=tuple(row["roles"]),
        escalated=row["escalated"],
        step_started_at=row["step_started_at"],
        due_at=row["due_at"],
        decisions=decisions,
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        subject_user_id=row["subject_user_id"],
    )
