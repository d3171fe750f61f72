"""Turning a consumed record into a contract model, or a `Reject` that names the field and the reason."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from shared.messaging.consumer import Reject
from shared.messaging.decoding import Undecodable, loads
from shared.messaging.envelope import Envelope

M = TypeVar("M", bound=BaseModel)


def _tenant_hint(raw: Any) -> UUID | None:
    if isinstance(raw, dict):
        try:
            return UUID(str(raw.get("tenant_id")))
        except ValueError:
            return None
    return None


def parse_contract(env: Envelope, model: type[M]) -> tuple[UUID, M]:
    """Validate the record against ``model``; its ``tenant_id`` field scopes everything after."""
    try:
        raw = loads(env.value)
    except Undecodable as exc:
        raise Reject(exc.reason, error_class=exc.code) from exc
    if not isinstance(raw, dict):
        raise Reject("payload must be a JSON object", error_class="validation_error")
    try:
        body = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise Reject(
            f"{field}: {first['msg']}{more}" if field else f"{first['msg']}{more}",
            error_class="validation_error",
            field=field,
            tenant_id=_tenant_hint(raw),
        ) from exc
    tenant = getattr(body, "tenant_id", None)
    if not isinstance(tenant, UUID):
        raise Reject("tenant_id is missing", error_class="validation_error", field="tenant_id")
    return tenant, body
