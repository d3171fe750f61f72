"""Catalog documents (JSON or YAML): a whole catalog as collections of entities, validated as a whole."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import yaml
from pydantic import ValidationError

from services.catalog.domain.kinds import LOADABLE


class InvalidDocument(ValueError):
    """The document cannot be loaded; ``errors`` locate each problem (FastAPI's error shape)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the catalog document")
        self.errors = errors


def parse_document(raw: bytes, content_type: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(raw) if "yaml" in content_type else json.loads(raw)
    except (yaml.YAMLError, ValueError) as exc:
        raise InvalidDocument([{"loc": ["body"], "msg": f"not a valid document: {exc}"}]) from exc
    if not isinstance(document, dict):
        raise InvalidDocument([{"loc": ["body"], "msg": "a document maps collections to lists"}])
    unknown = sorted(set(document) - {k.collection for k in LOADABLE})
    if unknown:
        raise InvalidDocument([{"loc": ["body", name], "msg": "unknown collection"} for name in unknown])
    return document


def catalog_states(document: dict[str, Any], *, tenant_id: UUID) -> list[Any]:
    """Every entity of the document as its state model, in dependency order (``LOADABLE``: users, clients,
    categories, services, bundles, plans, assignments); all validation errors at once, each located as
    collection.index.field."""
    states: list[Any] = []
    errors: list[dict[str, Any]] = []
    for kind in LOADABLE:
        items = document.get(kind.collection) or []
        if not isinstance(items, list):
            errors.append({"loc": ["body", kind.collection], "msg": "must be a list"})
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append({"loc": ["body", kind.collection, index], "msg": "must be an object"})
                continue
            if "tenant_id" in item:
                errors.append(
                    {
                        "loc": ["body", kind.collection, index, "tenant_id"],
                        "msg": "must not be given: the tenant is the caller's",
                    }
                )
                continue
            try:
                states.append(kind.model.model_validate({**item, "tenant_id": str(tenant_id)}))
            except ValidationError as exc:
                errors += [{"loc": ["body", kind.collection, index, *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
    if errors:
        raise InvalidDocument(errors)
    return states
