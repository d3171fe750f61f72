"""Catalog use cases: one function per verb, each in one unit of work."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.catalog.adapters.repository import CatalogRepository
from services.catalog.domain import clock, discount_approval, live_close, status
from services.catalog.domain.credentials import (
    DECOY_HASH,
    ApiKey,
    MalformedApiKey,
    hash_secret,
    new_api_key,
    parse_api_key,
    secret_matches,
)
from services.catalog.domain.kinds import BY_TYPE, Kind, kind_of
from services.catalog.domain.preparation import prepared
from services.catalog.domain.rules import Problem, problems_deleting, problems_saving
from shared import audit, topics
from shared.auth import Principal
from shared.clock.barrier import BarrierNotPassed, CloseBarrier
from shared.clock.lag import ConsumerLagProbe, LagNotSettled
from shared.contracts.approvals import (
    ApprovalDecision,
    ApprovalItemType,
    ApprovalOutcome,
    ApprovalRule,
    ApprovalRuleSet,
)
from shared.contracts.catalog import (
    CatalogEvent,
    ClientStatusState,
    DiscountState,
    Role,
    StatusChange,
    TenantState,
    UserKind,
    UserState,
)
from shared.contracts.clock import ClockTick
from shared.db.uow import UnitOfWork, unit_of_work
from shared.messaging.consumer import Rejections
from shared.messaging.envelope import Parsed

log = structlog.get_logger(__name__)


class UnknownTenant(LookupError):
    def __init__(self, tenant_id: UUID) -> None:
        super().__init__(f"tenant {tenant_id} does not exist")


class NotFound(LookupError):
    def __init__(self, kind: Kind, entity_id: UUID) -> None:
        super().__init__(f"{kind.entity_type} {entity_id} not found")


class Refused(Exception):
    """The catalog's rules refuse the change; each problem names its field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _publish(
    uow: UnitOfWork, *, state: Any, entity_type: str, entity_id: UUID, version: int, at: datetime, deleted: bool = False
) -> CatalogEvent:
    event = CatalogEvent(
        event_id=uuid.uuid4(),
        tenant_id=state.tenant_id,
        entity_type=entity_type,
        entity_id=entity_id,
        version=version,
        deleted=deleted,
        occurred_at=at,
        state=state,
    )
    uow.publish(topic=topics.CATALOG_EVENTS.name, key=event.key(), message=event, message_id=event.event_id)
    return event


async def save_tenant(pool: asyncpg.Pool, *, state: TenantState, actor: str, at: datetime) -> CatalogEvent:
    """Create or change a tenant (platform operator), audit it and publish it."""
    async with unit_of_work(pool, tenant_id=state.tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        version, before = await repo.upsert_tenant(state)
        event = _publish(uow, state=state, entity_type="tenant", entity_id=state.tenant_id, version=version, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="created" if before is None else "updated",
            entity_type="tenant",
            entity_id=state.tenant_id,
            at=at,
            before=before,
            after=state,
        )
        if before is None and state.mode == "live":
            # Live tenants follow the wall clock from now; a sandbox's test clock has no time until its
            # first advance, so an operator can rehearse any month, past or future.
            await repo.set_clock(state.tenant_id, at, "wall")
        return event


async def save_entity(pool: asyncpg.Pool, *, state: Any, actor: str, at: datetime) -> CatalogEvent | None:
    """Create or change a catalog entity once its rules pass; audit and publish it.

    Saving exactly the state it already has changes nothing and publishes nothing (returns None), which
    is what makes loading the same catalog file twice a no-op. What the catalog derives (a plan's
    prerequisite lines, a term's renewal date) is derived first: the saved state is the derived one.
    """
    return (await _save(pool, state=state, actor=actor, at=at)).event


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    event: CatalogEvent | None
    """The event published, or None when the entity already had exactly this state."""
    state: Any
    """The state as saved (or as it already was): what the catalog derived and decided included."""
    crossed: ApprovalRule | discount_approval.NoRulesYet | None
    """For a discount sent for approval by this save: the rule it crossed (or that no rules had arrived)."""


async def _save(pool: asyncpg.Pool, *, state: Any, actor: str, at: datetime) -> SaveOutcome:
    kind = kind_of(state)
    async with unit_of_work(pool, tenant_id=state.tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        before, version = await repo.locked(kind, kind.entity_id(state))
        state = await prepared(state, repo)
        crossed = None
        if isinstance(state, DiscountState):
            state, crossed = discount_approval.gated(state, before, await repo.approval_rules(), version=version + 1)
        if before == state:
            return SaveOutcome(event=None, state=before, crossed=None)
        problems = await problems_saving(state, before, repo)
        if problems:
            raise Refused(problems)
        await repo.store(kind, state, version=version + 1)
        event = _publish(
            uow, state=state, entity_type=kind.entity_type, entity_id=kind.entity_id(state), version=version + 1, at=at
        )
        if crossed is not None:
            await _request_approval(uow, repo, state, crossed, actor=actor, at=at)
        await audit.record(
            uow,
            actor=actor,
            action="created" if before is None else "updated",
            entity_type=kind.entity_type,
            entity_id=kind.entity_id(state),
            at=at,
            before=before,
            after=state,
        )
        return SaveOutcome(event=event, state=state, crossed=crossed)


async def _request_approval(
    uow: UnitOfWork, repo: CatalogRepository, discount: DiscountState, rule: Any, *, actor: str, at: datetime
) -> None:
    """Ask the approvals service to decide a pending discount, in the transaction that saved it."""
    company = await repo.get("company", discount.company_id) if discount.company_id is not None else None
    request = discount_approval.approval_request(
        discount,
        rule,
        requested_by=actor.removeprefix("user:"),
        company_ref=company.company_ref if company is not None else None,
        at=at,
    )
    uow.publish(topic=topics.APPROVAL_REQUESTS.name, key=request.key(), message=request, message_id=request.request_id)


async def delete_entity(
    pool: asyncpg.Pool, *, tenant_id: UUID, kind: Kind, entity_id: UUID, actor: str, at: datetime
) -> CatalogEvent:
    """Delete an entity where that is safe (its rules say when it is not), audit and publish it."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        before, version = await repo.locked(kind, entity_id)
        if before is None:
            raise NotFound(kind, entity_id)
        problems = await problems_deleting(before, repo)
        if problems:
            raise Refused(problems)
        await repo.store(kind, before, version=version + 1, deleted=True)
        if kind.entity_type == "user":
            await repo.revoke_api_keys(entity_id, at)
        event = _publish(
            uow,
            state=before,
            entity_type=kind.entity_type,
            entity_id=entity_id,
            version=version + 1,
            at=at,
            deleted=True,
        )
        await audit.record(
            uow, actor=actor, action="deleted", entity_type=kind.entity_type, entity_id=entity_id, at=at, before=before
        )
        return event


async def read_entity(pool: asyncpg.Pool, *, tenant_id: UUID, kind: Kind, entity_id: UUID) -> Any:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        found = await CatalogRepository(uow.conn).get(kind.entity_type, entity_id)
    if found is None:
        raise NotFound(kind, entity_id)
    return found


async def list_entities(
    pool: asyncpg.Pool, *, tenant_id: UUID, kind: Kind, after: UUID | None, limit: int, equals: dict[str, Any]
) -> list[Any]:
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        return await CatalogRepository(uow.conn).page(kind, after=after, limit=limit, equals=equals)


async def republish(pool: asyncpg.Pool, *, tenant_id: UUID, actor: str, at: datetime) -> int:
    """Publish every entity of the tenant again, as it stands (deleted ones as deletions), so a consumer
    can rebuild its read model from scratch. Versions are unchanged: a current read model ignores them."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tenant = await repo.tenant(tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        _publish(
            uow,
            state=tenant,
            entity_type="tenant",
            entity_id=tenant_id,
            version=await repo.tenant_version(tenant_id),
            at=at,
        )
        everything = await repo.everything()
        for entity_type, state, version, deleted in everything:
            _publish(
                uow,
                state=state,
                entity_type=entity_type,
                entity_id=BY_TYPE[entity_type].entity_id(state),
                version=version,
                at=at,
                deleted=deleted,
            )
        await audit.record(
            uow,
            actor=actor,
            action="republished",
            entity_type="catalog",
            entity_id=tenant_id,
            at=at,
            after={"entities": len(everything) + 1},
        )
        return len(everything) + 1


# -- credentials ----------------------------------------------------------------------------------------


class UnknownUser(LookupError):
    def __init__(self, user_id: UUID) -> None:
        super().__init__(f"user {user_id} does not exist")


class InvalidCredential(Exception):
    """The API key is unknown, revoked, wrong, or its user is inactive (deliberately not saying which)."""

    def __init__(self) -> None:
        super().__init__("invalid API key")


async def mint_api_key(pool: asyncpg.Pool, *, tenant_id: UUID, user_id: UUID, actor: str, at: datetime) -> ApiKey:
    """A new API key for a user; its secret is returned once and stored only as a hash."""
    key = new_api_key(tenant_id=tenant_id, key_id=uuid.uuid4())
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.get("user", user_id) is None:
            raise UnknownUser(user_id)
        await repo.add_api_key(key_id=key.key_id, user_id=user_id, secret_hash=hash_secret(key.secret), at=at)
        await audit.record(
            uow,
            actor=actor,
            action="api_key_created",
            entity_type="user",
            entity_id=user_id,
            at=at,
            after={"key_id": str(key.key_id)},
        )
    return key


async def bootstrap_admin(
    pool: asyncpg.Pool, *, tenant_id: UUID, email: str, name: str, actor: str, at: datetime
) -> tuple[UserState, ApiKey]:
    """The platform operator's way in to a tenant: its admin user (created if new) and an API key."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.tenant(tenant_id) is None:
            raise UnknownTenant(tenant_id)
        existing: UserState | None = await repo.user_by_email(email)
    user = existing or UserState(
        tenant_id=tenant_id, user_id=uuid.uuid4(), email=email, name=name, role=Role.ADMIN, kind=UserKind.STAFF
    )
    if existing is None:
        await save_entity(pool, state=user, actor=actor, at=at)
    return user, await mint_api_key(pool, tenant_id=tenant_id, user_id=user.user_id, actor=actor, at=at)


_SCRYPT_SLOTS = asyncio.Semaphore(4)  # scrypt takes 16 MiB and ~50 ms a check: a few at a time


async def authenticate(pool: asyncpg.Pool, *, api_key: str) -> Principal:
    """Who an API key belongs to, checked inside that key's tenant (raises `InvalidCredential`)."""
    try:
        key = parse_api_key(api_key)
    except MalformedApiKey as exc:
        raise InvalidCredential from exc
    async with unit_of_work(pool, tenant_id=key.tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        found = await repo.api_key(key.key_id)
        # scrypt runs in a worker thread (a burst of wrong secrets no longer stalls the event loop), and for an
        # unknown key id too, against a decoy, so the answer's timing does not tell which ids exist
        async with _SCRYPT_SLOTS:
            matches = await asyncio.to_thread(secret_matches, key.secret, found[1] if found else DECOY_HASH)
        if found is None or not matches:
            raise InvalidCredential
        user: UserState | None = await repo.get("user", found[0])
    if user is None or not user.active:
        raise InvalidCredential
    return Principal(user_id=user.user_id, tenant_id=key.tenant_id, role=user.role, company_id=user.company_id)


# -- the billing clock ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Advanced:
    tick: ClockTick
    waited_for_consumers_s: float
    """How long the advance waited for the platform to settle before it published the tick."""
    settled: bool | None = None
    """Asked to wait for the tick's work: whether everything settled in time (None: not asked)."""
    settled_after_s: float | None = None
    behind: dict[str, Any] | None = None
    """When it did not settle in time: the consumer groups and outboxes still behind."""


async def advance_test_clock(
    pool: asyncpg.Pool,
    lag: ConsumerLagProbe,
    *,
    tenant_id: UUID,
    to: datetime,
    actor: str,
    at: datetime,
    timeout_s: float,
    settle_timeout_s: float | None = None,
) -> Advanced:
    """Move a sandbox tenant's billing time to ``to`` once the platform has settled (every consumer group
    caught up, every outbox relayed): what was sent before the advance is counted before the tick.

    With ``settle_timeout_s``, then wait (that long at most) until everything the tick caused is done too:
    periods closed, charged, invoiced, taxed. Not settling in time is reported, not raised: the tick stands.
    """
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tenant = await repo.tenant(tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        clock.advance(tenant_id=tenant_id, mode=tenant.mode, current=await repo.clock_now(tenant_id), to=to)
    waited = await lag.wait_until_settled(timeout_s=timeout_s)
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tick = clock.advance(
            tenant_id=tenant_id, mode=tenant.mode, current=await repo.clock_now(tenant_id, lock=True), to=to
        )
        await repo.set_clock(tenant_id, to, "test")
        uow.publish(topic=topics.CLOCK_TICKS.name, key=tick.key(), message=tick, message_id=tick.tick_id)
        await audit.record(
            uow,
            actor=actor,
            action="clock_advanced",
            entity_type="tenant_clock",
            entity_id=tenant_id,
            at=at,
            before={"now": tick.previous.isoformat() if tick.previous else None},
            after={"now": tick.now.isoformat()},
        )
    if settle_timeout_s is None:
        return Advanced(tick=tick, waited_for_consumers_s=waited)
    try:
        after = await lag.wait_until_settled(timeout_s=settle_timeout_s)
    except LagNotSettled as exc:
        return Advanced(tick=tick, waited_for_consumers_s=waited, settled=False, behind=exc.report.behind())
    return Advanced(tick=tick, waited_for_consumers_s=waited, settled=True, settled_after_s=after)


@dataclass(frozen=True, slots=True)
class ClockStatus:
    tenant: TenantState
    now: datetime | None
    mode: str | None
    behind: dict[str, Any] | None
    """None when the platform has settled (so since the tenant's last tick too), else what is behind."""


async def clock_status(pool: asyncpg.Pool, lag: ConsumerLagProbe, *, tenant_id: UUID) -> ClockStatus:
    """The tenant's billing time and whether the platform has settled (everything its last tick caused is
    done): a handle to poll after an advance that did not wait."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        tenant = await repo.tenant(tenant_id)
        if tenant is None:
            raise UnknownTenant(tenant_id)
        now, mode = await repo.clock(tenant_id)
    report = await lag.settled_now()
    return ClockStatus(tenant=tenant, now=now, mode=mode, behind=report.behind() if report is not None else None)


@dataclass(frozen=True, slots=True)
class LiveClose:
    """How live periods close (services/catalog/domain/live_close.py): the rules, and the barrier that says
    everything published before a moment has gone through (None: close at midnight + grace without one)."""

    rules: live_close.CloseRules
    barrier: CloseBarrier | None
    barrier_timeout_s: float = 30.0


async def tick_live_tenants(pool: asyncpg.Pool, *, now: datetime, close: LiveClose) -> int:
    """Publish a wall-clock tick for every live tenant (the scheduler calls this), holding a tenant's clock just
    short of a local midnight until the close may go ahead. Returns how many tenants were ticked."""
    async with unit_of_work(pool) as uow:
        tenants = await CatalogRepository(uow.conn).live_tenants()
    zones: dict[UUID, str] = {}
    waiting = False
    for tenant_id in tenants:
        async with unit_of_work(pool, tenant_id=tenant_id) as uow:
            repo = CatalogRepository(uow.conn)
            state = await repo.tenant(tenant_id)
            zones[tenant_id] = state.timezone if state is not None else "UTC"
            current = await repo.clock_now(tenant_id)
        waiting = waiting or live_close.needs_barrier(current, now, zones[tenant_id], close.rules)
    cleared = await _pass_barrier(close, began=now) if waiting else None
    ticked = 0
    for tenant_id in tenants:
        async with unit_of_work(pool, tenant_id=tenant_id) as uow:
            repo = CatalogRepository(uow.conn)
            current = await repo.clock_now(tenant_id, lock=True)
            target = live_close.tick_target(
                current=current, now=now, timezone=zones[tenant_id], rules=close.rules, cleared=cleared
            )
            if target is None:
                continue
            crossed = live_close.due_boundary(current, target, zones[tenant_id])
            if crossed is not None and cleared is None:
                log.error("live_close_without_barrier", tenant_id=str(tenant_id), boundary=crossed.isoformat())
            tick = clock.wall_tick(tenant_id=tenant_id, current=current, now=target)
            await repo.set_clock(tenant_id, target, "wall")
            uow.publish(topic=topics.CLOCK_TICKS.name, key=tick.key(), message=tick, message_id=tick.tick_id)
            ticked += 1
    return ticked


async def _pass_barrier(close: LiveClose, *, began: datetime) -> datetime | None:
    """``began`` when everything published before it went through, else None (a close waits, or is forced after
    its max wait)."""
    if close.barrier is None:
        return began
    try:
        waited = await close.barrier.wait(timeout_s=close.barrier_timeout_s)
    except BarrierNotPassed as exc:
        log.warning("live_close_barrier_not_passed", reason=str(exc))
        return None
    log.info("live_close_barrier_passed", waited_s=round(waited, 3), through=began.isoformat())
    return began


# -- loading a whole catalog ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedCatalog:
    changed: int
    unchanged: int
    pending_approval: list[discount_approval.PendingApproval]
    """Every item of the document that is pending approval once saved, in document order, with why."""


async def load_catalog(
    pool: asyncpg.Pool, *, tenant_id: UUID, states: list[Any], actor: str, at: datetime
) -> LoadedCatalog:
    """Save every entity of a catalog document in dependency order; unchanged ones change nothing, so
    loading the same document twice is a no-op. Stops at the first refusal (earlier saves stay).

    Discounts that end up pending approval (sent for approval now, or still waiting on an earlier request
    with the same terms) are listed with the reason, so the caller knows what is not in effect yet."""
    changed, unchanged, pending = 0, 0, []
    for state in states:
        if state.tenant_id != tenant_id:
            raise ValueError("a catalog document is loaded into the caller's tenant only")
        saved = await _save(pool, state=state, actor=actor, at=at)
        if saved.event is None:
            unchanged += 1
        else:
            changed += 1
        if isinstance(saved.state, DiscountState):
            waiting = discount_approval.why_pending(saved.state, saved.crossed)
            if waiting is not None:
                pending.append(waiting)
    return LoadedCatalog(changed=changed, unchanged=unchanged, pending_approval=pending)


# -- client status ----------------------------------------------------------------------------------------


async def change_status(
    pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID, change: StatusChange, actor: str, at: datetime
) -> tuple[CatalogEvent, list[CatalogEvent]]:
    """Record a status change of a client, one of its assignments or one of its services, in one unit of
    work with its effects: a cancellation ends the affected assignments on its effective date (those not
    started yet are deleted). Audited with its date and reason; returns the status event and the
    assignment events."""
    status_kind, assignment_kind = BY_TYPE["client_status"], BY_TYPE["assignment"]
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.get("company", company_id) is None:
            raise NotFound(BY_TYPE["company"], company_id)
        assignments = await repo.find("assignment", company_id=str(company_id))
        if change.assignment_id is not None and change.assignment_id not in {a.assignment_id for a in assignments}:
            raise Refused([Problem("assignment_id", f"client {company_id} has no assignment {change.assignment_id}")])
        if change.service_id is not None and await repo.get("service", change.service_id) is None:
            raise Refused([Problem("service_id", f"service {change.service_id} does not exist")])
        current, version = await repo.locked(status_kind, company_id)
        try:
            state = status.recorded(current, change, tenant_id=tenant_id, company_id=company_id)
        except status.StatusRefused as exc:
            raise Refused([Problem(exc.field, str(exc), conflict=True)]) from exc
        await repo.store(status_kind, state, version=version + 1)
        event = _publish(
            uow, state=state, entity_type="client_status", entity_id=company_id, version=version + 1, at=at
        )
        await audit.record(
            uow,
            actor=actor,
            action="status_changed",
            entity_type="client_status",
            entity_id=company_id,
            at=at,
            before=current,
            after=change,
        )
        effects = []
        for ending in status.endings(change, assignments):
            _, version = await repo.locked(assignment_kind, ending.before.assignment_id)
            before, after = ending.before, ending.ended or ending.before
            await repo.store(assignment_kind, after, version=version + 1, deleted=ending.ended is None)
            effects.append(
                _publish(
                    uow,
                    state=after,
                    entity_type="assignment",
                    entity_id=after.assignment_id,
                    version=version + 1,
                    at=at,
                    deleted=ending.ended is None,
                )
            )
            await audit.record(
                uow,
                actor=actor,
                action=f"ended_by_{change.status.value}" if ending.ended else f"deleted_by_{change.status.value}",
                entity_type="assignment",
                entity_id=after.assignment_id,
                at=at,
                before=before,
                after={"end_date": str(change.effective_date), "reason": change.reason} if ending.ended else None,
            )
        return event, effects


async def active_services(
    pool: asyncpg.Pool, *, tenant_id: UUID, company_id: UUID, on: date
) -> list[status.ClientService]:
    """The services a client has on ``on``: its active plans' lines and bundles, without cancelled ones."""
    async with unit_of_work(pool, tenant_id=tenant_id) as uow:
        repo = CatalogRepository(uow.conn)
        if await repo.get("company", company_id) is None:
            raise NotFound(BY_TYPE["company"], company_id)
        assignments = await repo.find("assignment", company_id=str(company_id))
        plans = {a.plan_id: await repo.get("plan", a.plan_id) for a in assignments}
        bundle_ids = {line.bundle_id for p in plans.values() if p for line in p.lines if line.bundle_id}
        bundles = {b: await repo.get("bundle", b) for b in bundle_ids}
        history: ClientStatusState | None = await repo.get("client_status", company_id)
    return status.client_services(
        on,
        assignments=assignments,
        plans={k: v for k, v in plans.items() if v is not None},
        bundles={k: v for k, v in bundles.items() if v is not None},
        history=history.history if history else [],
    )


# -- approvals: rules and decisions (consumed) -------------------------------------------------------------


async def keep_rule_sets(uow: UnitOfWork, items: Sequence[Parsed[ApprovalRuleSet]]) -> Rejections[ApprovalRuleSet]:
    """Hold each tenant's approval rules as last published: a set replaces the held one when newer
    (an older or repeated version changes nothing). Saved discounts are not re-evaluated: rules apply
    from the next save of a discount's terms."""
    repo = CatalogRepository(uow.conn)
    for item in items:
        replaced = await repo.replace_approval_rules(item.body)
        log.info("approval_rules_received", version=item.body.version, replaced=replaced)
    return []


async def apply_decisions(uow: UnitOfWork, items: Sequence[Parsed[ApprovalDecision]]) -> Rejections[ApprovalDecision]:
    """A final decision on a discount's request sets its approval_status (approved or rejected), publishes
    its new state and audits it as done by ``decided_by``. Decisions on other item types, on discounts
    that are gone, or on a request the discount no longer waits for (its terms changed since) change
    nothing."""
    repo = CatalogRepository(uow.conn)
    kind = BY_TYPE["discount"]
    for item in items:
        decision = item.body
        if decision.item_type is not ApprovalItemType.DISCOUNT or not decision.final:
            continue  # catalog holds only discounts, and acts only on final decisions
        try:
            discount_id = UUID(decision.item_id)
        except ValueError:
            log.warning("decision_for_unknown_discount", item_id=decision.item_id)
            continue
        before, version = await repo.locked(kind, discount_id)
        after = (
            discount_approval.decided(
                before, request_id=decision.request_id, approved=decision.outcome is ApprovalOutcome.APPROVED
            )
            if before is not None
            else None
        )
        if before is None or after is None:
            log.info("decision_not_applied", discount_id=str(discount_id), request_id=str(decision.request_id))
            continue
        await repo.store(kind, after, version=version + 1)
        _publish(
            uow, state=after, entity_type="discount", entity_id=discount_id, version=version + 1, at=decision.decided_at
        )
        await audit.record(
            uow,
            actor=decision.decided_by,
            action=f"approval_{decision.outcome.value}",
            entity_type="discount",
            entity_id=discount_id,
            at=decision.decided_at,
            before=before,
            after={
                "approval_status": after.approval_status.value,
                "request_id": str(decision.request_id),
                "decision_id": str(decision.decision_id),
                "reason": decision.reason,
            },
        )
    return []
