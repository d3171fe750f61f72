"""Reading a record as sent (Kafka bytes or one element of an HTTP batch) into its contract, or into a
`Malformed` that names the field, a machine-readable code and the reason. Pure, no I/O.

Codes: ``invalid_json``, ``not_an_object``, ``missing_field``, ``wrong_type``, ``negative_quantity``,
``timestamp_without_offset``, ``end_not_after_start``, ``invalid_value``. Unknown extra fields are kept
(contracts allow extras), never a reason to reject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from shared.http_text import MESSAGE, SUSPICIOUS, first_unstorable
from shared.messaging.decoding import MAX_DEPTH, Undecodable, depth, loads

M = TypeVar("M", bound=BaseModel)

_WRONG_TYPE = {
    "string_type",
    "decimal_string",
    "decimal_string_format",
    "uuid_type",
    "uuid_parsing",
    "bool_type",
    "bool_parsing",
    "timestamp_type",
    "datetime_type",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "dict_type",
    "model_type",
    "int_type",
    "int_parsing",
}


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record that cannot be read: dead-lettered as ``error_class`` (``invalid_json`` or
    ``validation_error``) with ``code``, ``field`` and ``reason``."""

    error_class: str
    code: str
    reason: str
    field: str | None = None
    tenant_id: UUID | None = None
    source: str | None = None
    external_id: str | None = None


def _code(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing_field"
    if kind == "decimal_non_negative":
        return "negative_quantity"
    if kind == "timestamp_offset_missing":
        return "timestamp_without_offset"
    if kind == "value_error" and "must be after start_time" in str(error.get("msg", "")):
        return "end_not_after_start"
    if kind in _WRONG_TYPE:
        return "wrong_type"
    return "invalid_value"


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


def _tenant(raw: dict[str, Any]) -> UUID | None:
    try:
        return UUID(str(raw.get("tenant_id")))
    except ValueError:
        return None


def _free_form_depth(record: BaseModel) -> int:
    """How deep the record's free-form parts nest (``attributes`` and unknown fields): the only ones that can."""
    parts = [getattr(record, "attributes", None), *(record.model_extra or {}).values()]
    return max((depth(p) for p in parts), default=0)


def read_record(raw: Any, model: type[M], id_field: str) -> M | Malformed:
    """``raw`` is bytes (a Kafka value) or an already-decoded JSON value (an HTTP batch element).

    Bytes are first validated straight from JSON by pydantic (one pass in Rust, no intermediate dict); any
    failure there is read again the slow way (``json.loads``, then the model), which alone decides the
    answer for a bad record, so the codes and reasons are exactly those of the slow way. Inputs pydantic's
    parser refuses but ``json.loads`` accepts (a UTF-8 BOM, UTF-16, a lone surrogate) also end up there."""
    if isinstance(raw, bytes | bytearray):
        try:
            fast = model.model_validate_json(raw)
        except ValidationError:
            pass
        else:
            if _free_form_depth(fast) <= MAX_DEPTH - 1 and not SUSPICIOUS.search(raw):
                return fast
        try:
            raw = loads(raw)
        except Undecodable as exc:
            return Malformed(exc.code, exc.code, exc.reason)
    elif depth(raw) > MAX_DEPTH:
        return Malformed("too_deep", "too_deep", f"payload nests deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict):
        return Malformed("validation_error", "not_an_object", "payload must be a JSON object")
    if (where := first_unstorable(raw)) is not None:  # Postgres stores no NUL, no unpaired surrogate
        path = ".".join(str(p) for p in where)
        return Malformed("validation_error", "unstorable_text", f"{path}: {MESSAGE}", path, tenant_id=_tenant(raw))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        reason = f"{field}: {first['msg']}{more}" if field else f"{first['msg']}{more}"
        return Malformed(
            "validation_error",
            _code(first),
            reason,
            field,
            tenant_id=_tenant(raw),
            source=_text(raw, "source"),
            external_id=_text(raw, id_field),
        )
