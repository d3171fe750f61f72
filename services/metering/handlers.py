"""Metering's message handlers: read a record into its contract; the use cases do the rest."""

from __future__ import annotations

from uuid import UUID

from services.metering import use_cases
from shared.contracts.catalog import CatalogEvent
from shared.contracts.usage import UsageRecord
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract


def parse_usage(env: Envelope) -> tuple[UUID, UsageRecord]:
    return parse_contract(env, UsageRecord)


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


USAGE = BatchConsumer(service="metering", consumer="usage", parse=parse_usage, apply=use_cases.accept_usage)
CATALOG = BatchConsumer(service="metering", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
