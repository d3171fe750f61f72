"""Reading a record's JSON inside the platform's own parse step, with limits, so no input can fail a batch.

One hostile record used to halt a consumer for every tenant: a value nested 1,000 deep made the JSON decoder
raise `RecursionError` (in FastStream's decoder, before the platform's parser ran), the batch was nacked and
redelivered forever. Now FastStream hands the kernel the raw bytes (`raw_bodies`), every record is decoded here
or by pydantic from bytes, and a record that cannot be read is a `Reject` with a specific reason: ``too_large``
(over its topic's `max_record_bytes`), ``too_deep`` (nested deeper than `MAX_DEPTH`) or ``invalid_json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from faststream.message import StreamMessage

MAX_DEPTH = 32
"""Arrays and objects inside one another, the record itself being level 1. Our contracts need 4; an RMM's
free-form ``attributes`` a few more."""


class Undecodable(ValueError):
    """The record is not JSON the platform will read: ``code`` is ``invalid_json`` or ``too_deep``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that never raises anything but `Undecodable`, and refuses nesting deeper than ``max_depth``."""
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise Undecodable("too_deep", f"payload nests deeper than {max_depth} levels") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Undecodable("invalid_json", f"payload is not valid JSON: {exc}") from exc
    if depth(value, limit=max_depth) > max_depth:
        raise Undecodable("too_deep", f"payload nests deeper than {max_depth} levels")
    return value


def depth(value: Any, *, limit: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in ``value`` (a scalar is 0), counted up to ``limit + 1`` without
    recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


async def raw_bodies(msg: StreamMessage[Any]) -> list[bytes]:
    """FastStream's decoder for the kernel's batch subscribers: the records' bytes, undecoded."""
    records = msg.raw_message if isinstance(msg.raw_message, (list, tuple)) else (msg.raw_message,)
    return [r.value or b"" for r in records]
