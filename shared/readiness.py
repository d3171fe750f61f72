"""``GET /v1/readiness``: whether this service's own read model has what it needs for the caller's tenant.

A new tenant, client or discount reaches the other services a moment after catalog answers: until its
catalog event arrives, tax-currency answers 409 "not in tax-currency's catalog view yet", metering keeps
records unmapped, and so on. Rather than sleep, an integrator asks each service it is about to call and,
with ``?wait=SECONDS``, waits until it is ready (or the bound runs out).

Each service supplies its check at composition (``ServiceRuntime(..., readiness=…)``): a `ReadModelCheck`
naming, as SQL over its own schema, what must be there (the tenant, a client by id or ref, the tenant's
approval rules, …). A service that keeps no clients answers a question about one as ready and leaves
``company`` out of ``checked``: it has nothing to wait for. Every query runs in the tenant's transaction
(row-level security on), so a service never reads another tenant's rows, nor another service's schema.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from shared.auth import Principal, current_principal
from shared.db.uow import unit_of_work

MAX_WAIT_S = 30.0
POLL_INTERVAL_S = 0.2


@dataclass(frozen=True, slots=True)
class ReadinessQuestion:
    """Ready for this tenant, and (optionally) for this one client, named by id or by ref."""

    tenant_id: UUID
    company_id: UUID | None = None
    company_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Missing:
    item: str
    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """One more thing the service needs per tenant: ``query`` answers a boolean with ``$1`` the tenant id."""

    item: str
    query: str
    reason: str


class Queries(Protocol):
    """What a check needs of a connection (an asyncpg one, in the tenant's transaction)."""

    async def fetchval(self, query: str, *args: Any) -> Any: ...


class ReadinessCheck(Protocol):
    """The port each service implements: what its read model lacks to serve the question."""

    def checked(self, question: ReadinessQuestion) -> list[str]:
        """The items this service checks for the question (a service that keeps no clients leaves them out)."""
        ...

    async def missing(self, conn: Queries, question: ReadinessQuestion) -> list[Missing]: ...


@dataclass(frozen=True, slots=True)
class ReadModelCheck:
    """A service's catalog read model as SQL over its own schema.

    ``tenant``: a boolean query, ``$1`` the tenant id. ``company_by_id`` / ``company_by_ref``: boolean
    queries, ``$1`` the tenant id and ``$2`` the client's id / ref; None when the service keeps no clients.
    ``also``: what else the service needs per tenant (e.g. its approval rules). ``view`` names the read model
    in the reasons (default "<service>'s catalog view").
    """

    service: str
    view: str = ""
    tenant: str | None = None
    company_by_id: str | None = None
    company_by_ref: str | None = None
    also: tuple[Requirement, ...] = ()

    def checked(self, question: ReadinessQuestion) -> list[str]:
        items = ["tenant"] if self.tenant else []
        if self._company(question) is not None:
            items.append("company")
        return items + [r.item for r in self.also]

    def _company(self, question: ReadinessQuestion) -> tuple[str, str, UUID | str] | None:
        """The query, key and value that find the client asked about, if asked and this service keeps clients."""
        if question.company_id is not None and self.company_by_id:
            return self.company_by_id, f"company_id={question.company_id}", question.company_id
        if question.company_ref is not None and self.company_by_ref:
            return self.company_by_ref, f"company_ref={question.company_ref}", question.company_ref
        return None

    async def missing(self, conn: Queries, question: ReadinessQuestion) -> list[Missing]:
        view = self.view or f"{self.service}'s catalog view"
        t = question.tenant_id
        gaps: list[Missing] = []
        if self.tenant and not await conn.fetchval(self.tenant, t):
            gaps.append(Missing("tenant", f"tenant_id={t}", f"not in {view} yet"))
        company = self._company(question)
        if company is not None and not await conn.fetchval(company[0], t, company[2]):
            gaps.append(Missing("company", company[1], f"not in {view} yet"))
        for requirement in self.also:
            if not await conn.fetchval(requirement.query, t):
                gaps.append(Missing(requirement.item, f"tenant_id={t}", requirement.reason))
        return gaps


NOTHING_TO_WAIT_FOR = ReadModelCheck(service="this service")
"""For a service that keeps no catalog read model: always ready, nothing checked."""


# -- HTTP ---------------------------------------------------------------------------------------------------
class MissingItem(BaseModel):
    item: str = Field(
        description="What is missing: tenant, company, approval_rules (the service's own names)",
        examples=["company"],
    )
    key: str = Field(description="Which one, as the question named it", examples=["company_ref=acme"])
    reason: str = Field(description="Why it matters here", examples=["not in tax_currency's catalog view yet"])


class Readiness(BaseModel):
    service: str = Field(description="The service that answered", examples=["tax_currency"])
    tenant_id: UUID = Field(description="The caller's tenant (from the bearer token)")
    ready: bool = Field(description="True when nothing in `missing`: this service has what it needs")
    missing: list[MissingItem] = Field(description="What the service's read model still lacks (empty when ready)")
    checked: list[str] = Field(
        description="What this service checked. A service that keeps no clients leaves `company` out: a "
        "question about one is ready there by definition",
        examples=[["tenant", "company"]],
    )
    waited_s: float = Field(description="How long the request waited (0 without ?wait=)")


Caller = Annotated[Principal, Depends(current_principal)]


def readiness_router(service_name: str, pool: Callable[[], asyncpg.Pool], check: ReadinessCheck) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["readiness"])

    @router.get(
        "/readiness",
        summary="Whether this service's read model is ready for the caller's tenant (and one client); can wait",
        description="Answers 200 either way, with `ready` and what is `missing`. With `wait`, the request "
        f"holds until ready or until `wait` seconds have passed (at most {MAX_WAIT_S:.0f}). A client contact "
        "may ask only about their own client.",
    )
    async def readiness(
        who: Caller,
        company_id: Annotated[UUID | None, Query(description="Also ready for this client (by id)")] = None,
        company_ref: Annotated[
            str | None, Query(min_length=1, description="Also ready for this client (by ref)", examples=["acme"])
        ] = None,
        wait: Annotated[
            float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for ready (long poll); 0 answers at once")
        ] = 0.0,
    ) -> Readiness:
        if company_id is not None and company_ref is not None:
            raise HTTPException(status_code=422, detail="ask about a client by company_id or company_ref, not both")
        if who.company_id is not None and (company_ref is not None or company_id not in (None, who.company_id)):
            raise HTTPException(status_code=403, detail="a client contact may ask only about their own client")
        question = ReadinessQuestion(who.tenant_id, company_id, company_ref)
        started = time.monotonic()
        gaps = await wait_for_ready(pool(), check, question, wait_s=wait)
        return answer(service_name, question, check, gaps, waited_s=time.monotonic() - started)

    return router


async def gaps_now(pool: asyncpg.Pool, check: ReadinessCheck, question: ReadinessQuestion) -> list[Missing]:
    async with unit_of_work(pool, tenant_id=question.tenant_id) as uow:
        return await check.missing(uow.conn, question)


async def wait_for_ready(
    pool: asyncpg.Pool, check: ReadinessCheck, question: ReadinessQuestion, *, wait_s: float
) -> list[Missing]:
    """What is still missing once ready or once ``wait_s`` has passed, looking every `POLL_INTERVAL_S`."""
    deadline = time.monotonic() + wait_s
    while True:
        gaps = await gaps_now(pool, check, question)
        if not gaps or time.monotonic() >= deadline:
            return gaps
        await asyncio.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))


def answer(
    service: str, question: ReadinessQuestion, check: ReadinessCheck, gaps: Sequence[Missing], *, waited_s: float
) -> Readiness:
    return Readiness(
        service=service,
        tenant_id=question.tenant_id,
        ready=not gaps,
        missing=[MissingItem(item=g.item, key=g.key, reason=g.reason) for g in gaps],
        checked=check.checked(question),
        waited_s=round(waited_s, 3),
    )
