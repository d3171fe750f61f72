"""A consumed Kafka record, as the kernel hands it to a service's parser."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

T = TypeVar("T")
MESSAGE_ID_HEADER = "message-id"


@dataclass(frozen=True, slots=True)
class Envelope:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def from_record(cls, record: Any) -> Envelope:
        headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        return cls(record.topic, record.partition, record.offset, key, record.value or b"", headers)

    @property
    def message_id(self) -> str:
        """The producer's message id (our outboxes set one); else a digest of position and content.

        The digest includes the payload so that a new memory-only broker, which restarts offsets at 0,
        cannot make a different record look like one already consumed.
        """
        if MESSAGE_ID_HEADER in self.headers:
            return self.headers[MESSAGE_ID_HEADER]
        digest = hashlib.sha256(f"{self.topic}|{self.partition}|{self.offset}|".encode() + self.value)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Parsed(Generic[T]):
    envelope: Envelope
    tenant_id: UUID
    body: T
