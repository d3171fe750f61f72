"""A dict-backed `CatalogView` (services.catalog.domain.rules) for unit tests of the catalog's rules."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from services.catalog.domain.kinds import BY_TYPE


class FakeCatalog:
    def __init__(self, *states: Any) -> None:
        self.entities: dict[tuple[str, UUID], Any] = {}
        for state in states:
            self.add(state)

    def add(self, state: Any) -> Any:
        self.entities[(state.entity_type, BY_TYPE[state.entity_type].entity_id(state))] = state
        return state

    async def get(self, entity_type: str, entity_id: UUID) -> Any | None:
        return self.entities.get((entity_type, entity_id))

    async def find(self, entity_type: str, **equals: str) -> list[Any]:
        def matches(state: Any) -> bool:
            doc = json.loads(state.model_dump_json())
            return all(doc.get(k) == v for k, v in equals.items())

        return [
            s
            for (t, _), s in sorted(self.entities.items(), key=lambda kv: str(kv[0]))
            if t == entity_type and matches(s)
        ]
