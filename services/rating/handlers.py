"""Rating's message handlers and HTTP routes: read input into contracts; use cases do the work."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import ValidationError

from services.rating import use_cases
from shared.auth import Permission, Principal, requires
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedTime, AcceptedUsage
from shared.messaging.consumer import BatchConsumer
from shared.messaging.decoding import Undecodable, loads
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract


def parse_accepted(env: Envelope) -> tuple[UUID, AcceptedUsage | AcceptedTime]:
    """Usage and time share metering.accepted.v1; ``record_type`` says which (usage when absent).

    The JSON is read once; a record that does not validate is handed to the kernel's `parse_contract`,
    which words the rejection (field and reason) as for every other topic. Fast path: a message without the
    JSON string ``"time"`` anywhere cannot be a time entry, so pydantic parses it as usage straight from the
    bytes (no ``json.loads`` first); anything that does not validate that way takes the general path.
    """
    if b'"time"' not in env.value:
        try:
            usage = AcceptedUsage.model_validate_json(env.value)
        except ValidationError:
            pass
        else:
            return usage.tenant_id, usage
    try:
        raw = loads(env.value)
    except Undecodable:
        return parse_contract(env, AcceptedUsage)  # which words the rejection
    model: type[AcceptedUsage] | type[AcceptedTime] = (
        AcceptedTime if isinstance(raw, dict) and raw.get("record_type") == "time" else AcceptedUsage
    )
    try:
        body = model.model_validate(raw)
    except ValidationError:
        return parse_contract(env, model)
    return body.tenant_id, body


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


ACCEPTED = BatchConsumer(service="rating", consumer="accepted", parse=parse_accepted, apply=use_cases.rate_records)
CATALOG = BatchConsumer(service="rating", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
CLOCK = BatchConsumer(service="rating", consumer="clock", parse=parse_tick, apply=use_cases.close_periods)

router = APIRouter(prefix="/v1", tags=["rating"])
Reader = Annotated[Principal, Depends(requires(Permission.CHARGES_READ))]


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


@router.get("/charges/{charge_id}", summary="Why is this charge this amount: its records, rule, model and tiers")
async def explain_charge(charge_id: UUID, request: Request, principal: Reader) -> dict[str, Any]:
    found = await use_cases.explain_charge(_pool(request), tenant_id=principal.tenant_id, charge_id=charge_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"charge_id: no charge {charge_id}")
    return found


@router.get(
    "/unrated",
    summary="Records rating cannot bill yet, with the reason (no plan in force on their day, catalog not arrived)",
)
async def unrated(
    request: Request,
    principal: Reader,
    company_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    records = await use_cases.parked_records(
        _pool(request), tenant_id=principal.tenant_id, company_id=company_id, limit=limit
    )
    return {"records": records}


@router.get("/companies/{company_id}/preview", summary="Provisional charges of the client's open periods")
async def preview(company_id: UUID, request: Request, principal: Reader) -> list[dict[str, Any]]:
    try:
        return await use_cases.preview(_pool(request), tenant_id=principal.tenant_id, company_id=company_id)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=f"company_id: {exc}") from exc


@router.get("/companies/{company_id}/bucket-usage", summary="Bucket usage per period: used, overage, rolled over")
async def bucket_usage(company_id: UUID, request: Request, principal: Reader) -> list[dict[str, Any]]:
    return await use_cases.bucket_usage(_pool(request), tenant_id=principal.tenant_id, company_id=company_id)
