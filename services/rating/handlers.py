"""Rating's message handlers: read records into contracts; use cases do the work."""

from __future__ import annotations

from uuid import UUID

from services.rating import use_cases
from shared.contracts.catalog import CatalogEvent
from shared.contracts.clock import ClockTick
from shared.contracts.metering import AcceptedUsage
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract


def parse_accepted(env: Envelope) -> tuple[UUID, AcceptedUsage]:
    return parse_contract(env, AcceptedUsage)


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


def parse_tick(env: Envelope) -> tuple[UUID, ClockTick]:
    return parse_contract(env, ClockTick)


ACCEPTED = BatchConsumer(service="rating", consumer="accepted", parse=parse_accepted, apply=use_cases.rate_usage)
CATALOG = BatchConsumer(service="rating", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
CLOCK = BatchConsumer(service="rating", consumer="clock", parse=parse_tick, apply=use_cases.close_periods)
