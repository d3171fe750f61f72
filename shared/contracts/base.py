"""The contract layer's base model, reusable field types and helpers.

Every message on a topic is a `Contract`: immutable, and tolerant of fields it does not know (they are
kept in `model_extra` and written back out, so a relay never drops what a newer producer added).

Decimal values travel as JSON strings only (`"12.50"`): a JSON number is rejected because a float has
already lost the value. They are written back as plain strings, never in exponent form.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "Contract",
    "CurrencyCode",
    "DecimalStr",
    "MoneyStr",
    "NonEmptyStr",
    "NonNegativeDecimalStr",
    "TenantId",
    "Timestamp",
    "canonical_fingerprint",
    "format_decimal",
    "message_key",
]

_DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # ASCII digits only: "١٢" is not a quantity
_DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
MAX_INTEGER_DIGITS = 18
MAX_DECIMAL_CHARS = 100
"""Bounds on a decimal string: a 5,000-digit amount used to reach arithmetic that raised (a 500, issue 17)."""
EARLIEST_YEAR, LATEST_YEAR = 1000, 9000
"""Bounds on a timestamp's year, so converting it to any offset never leaves the calendar."""
_NON_NEGATIVE_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


class Contract(BaseModel):
    """Base of every message model: frozen, keeps unknown fields, accepts field names."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


def format_decimal(value: Decimal) -> str:
    """Plain positional notation, trailing zeros kept: Decimal('1E+2') -> '100', '12.50' -> '12.50'."""
    return format(value, "f")


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):  # only reachable from Python producers, never from JSON
        if not value.is_finite():
            raise PydanticCustomError("decimal_finite", "decimal must be finite, got {value}", {"value": value})
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "decimal_string",
            'decimal values must be JSON strings like "12.50", not {kind} (floats lose precision)',
            {"kind": type(value).__name__},
        )
    if not _DECIMAL_RE.fullmatch(value):
        raise PydanticCustomError(
            "decimal_string_format",
            "'{value}' is not a decimal string: digits with an optional '-' and '.' (e.g. \"12.50\")",
            {"value": value[:40]},
        )
    if len(value) > MAX_DECIMAL_CHARS or len(value.lstrip("-").split(".")[0].lstrip("0")) > MAX_INTEGER_DIGITS:
        raise PydanticCustomError(
            "decimal_too_large",
            "decimal strings have at most {digits} digits before the point and {chars} characters in all",
            {"digits": MAX_INTEGER_DIGITS, "chars": MAX_DECIMAL_CHARS},
        )
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes this
        raise PydanticCustomError("decimal_string_format", "not a decimal: {value}", {"value": value}) from exc


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise PydanticCustomError("decimal_non_negative", "must be >= 0, got {value}", {"value": str(value)})
    return value


_serialize_decimal = PlainSerializer(format_decimal, return_type=str, when_used="json")

DecimalStr = Annotated[
    Decimal,
    PlainValidator(_parse_decimal),
    _serialize_decimal,
    WithJsonSchema({"type": "string", "pattern": _DECIMAL_PATTERN, "format": "decimal"}),
]
"""A Decimal carried as a JSON string ("12.50"); JSON numbers are rejected."""

NonNegativeDecimalStr = Annotated[
    Decimal,
    PlainValidator(_parse_decimal),
    AfterValidator(_non_negative),
    _serialize_decimal,
    WithJsonSchema({"type": "string", "pattern": _NON_NEGATIVE_PATTERN, "format": "decimal"}),
]
"""A `DecimalStr` that must be >= 0."""

MoneyStr = DecimalStr
"""A money amount as a decimal string. Rounding to the currency's minor units is the producer's job."""


def _require_offset(value: object, handler: ValidatorFunctionWrapHandler) -> datetime:
    if not isinstance(value, str | datetime):
        raise PydanticCustomError(
            "timestamp_type",
            "timestamps must be RFC 3339 strings, not {kind}",
            {"kind": type(value).__name__},
        )
    try:
        result: datetime = handler(value)
    except ValidationError as exc:
        if any(err["type"] == "timezone_aware" for err in exc.errors()):
            raise PydanticCustomError(
                "timestamp_offset_missing",
                "timestamp offset is missing: RFC 3339 needs 'Z' or '+HH:MM', e.g. 2025-01-31T09:30:00Z",
            ) from None
        raise
    if not EARLIEST_YEAR <= result.year <= LATEST_YEAR:
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "timestamp year {year} is outside {earliest}..{latest}",
            {"year": result.year, "earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
    return result


Timestamp = Annotated[AwareDatetime, WrapValidator(_require_offset)]
"""RFC 3339 timestamp with an offset; naive timestamps and JSON numbers are rejected."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 alphabetic code, three upper-case letters."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]

TenantId = UUID
"""The MSP the message belongs to."""


def message_key(tenant_id: UUID, company_ref: str) -> str:
    """The partition key of per-client topics: ``"<tenant_id>:<company_ref>"``."""
    return f"{tenant_id}:{company_ref}"


def _canonical(value: Any) -> Any:
    """JSON-ready value with one spelling per meaning (see `canonical_fingerprint`)."""
    if isinstance(value, Decimal):
        normal = value.normalize()
        return format_decimal(Decimal(0) if normal.is_zero() else normal)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, date | UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def canonical_fingerprint(model: BaseModel) -> str:
    """sha256 hex of the model's fields (extras included) as canonical JSON.

    Typed decimals compare by numeric value (`Decimal.normalize()`: "1.0", "1" and "1.00" are the same
    content) and typed timestamps by instant (converted to UTC). Keys are sorted. Free-form values
    (`attributes`, unknown fields) are compared as sent.
    """
    data = _canonical(model.model_dump(mode="python"))
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
