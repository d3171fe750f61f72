"""Invoicing's message handlers."""

from __future__ import annotations

from uuid import UUID

from pydantic import TypeAdapter

from services.invoicing import use_cases
from shared.contracts.catalog import CatalogEvent
from shared.contracts.rating import RatingEvent
from shared.messaging.consumer import BatchConsumer, Reject
from shared.messaging.envelope import Envelope
from shared.messaging.parsing import parse_contract

_RATING = TypeAdapter(RatingEvent)


class _RatingEnvelope:
    """Adapter so parse_contract can validate the discriminated union."""

    @staticmethod
    def model_validate(raw: object) -> RatingEvent:
        return _RATING.validate_python(raw)


def parse_rating(env: Envelope) -> tuple[UUID, RatingEvent]:
    return parse_contract(env, _RatingEnvelope)  # type: ignore[arg-type]


def parse_catalog(env: Envelope) -> tuple[UUID, CatalogEvent]:
    return parse_contract(env, CatalogEvent)


CHARGES = BatchConsumer(service="invoicing", consumer="charges", parse=parse_rating, apply=use_cases.take_rating_events)
CATALOG = BatchConsumer(service="invoicing", consumer="catalog", parse=parse_catalog, apply=use_cases.project_catalog)
__all__ = ["CATALOG", "CHARGES", "Reject"]
