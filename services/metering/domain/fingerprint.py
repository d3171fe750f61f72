"""A record's content fingerprint, computed without the generic round trip. Pure, no I/O.

`fingerprint(record)` is exactly the contract's ``content_fingerprint()`` (`canonical_fingerprint`: sha256
of the canonical JSON, decimals by value, timestamps by instant in UTC, keys sorted, extras included): the
stored fingerprints of records received before must still tell a duplicate from a conflict. It reads the
model's field values directly instead of dumping the model and walking the dump with a chain of
``isinstance`` checks, which made the fingerprint metering's largest per-record cost. Any value that is not
one of the plain types a decoded JSON record holds (a model, a set, a custom class nested in ``attributes``
by a Python producer) sends the whole record to `canonical_fingerprint`, so the answer never differs.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.base import canonical_fingerprint, format_decimal

_AS_IS = frozenset({str, int, float, bool, type(None)})
_ZERO = Decimal(0)


class _NotPlain(Exception):
    """A value the fast path does not know: use the contract's own fingerprint."""


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is UUID:
        return str(value)
    if kind is Decimal:
        normal = value.normalize()
        return format_decimal(_ZERO if normal.is_zero() else normal)
    if kind is datetime:
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if kind is dict:
        return {str(k): _canonical(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_canonical(v) for v in value]
    if isinstance(value, Enum):
        return _canonical(value.value)
    if kind is date:
        return str(value)
    raise _NotPlain


def fingerprint(record: BaseModel) -> str:
    """sha256 hex of ``record``'s canonical content; equal to ``canonical_fingerprint(record)``."""
    try:
        data = {name: v if type(v) in _AS_IS else _canonical(v) for name, v in record.__dict__.items()}
        if record.__pydantic_extra__:
            data.update((name, _canonical(v)) for name, v in record.__pydantic_extra__.items())
    except _NotPlain:
        return canonical_fingerprint(record)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
