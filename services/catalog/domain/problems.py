"""What a catalog rule answers (a `Problem` naming the field) and what it reads related entities through
(`CatalogView`: the Postgres repository implements it; a dict-backed fake does in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str
    conflict: bool = False  # True: the request is valid but the catalog's state forbids it (HTTP 409)


class CatalogView(Protocol):
    async def get(self, entity_type: str, entity_id: UUID) -> Any | None: ...

    async def find(self, entity_type: str, **equals: str) -> list[Any]: ...
