"""A local SMTP server (aiosmtpd, in its own thread) that keeps every message notification sends it."""

from __future__ import annotations

import email
import email.policy
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    attachments: tuple[str, ...]


class _Handler:
    def __init__(self, inbox: list[Mail]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        names = tuple(str(part.get_filename()) for part in message.iter_attachments())
        self.inbox.append(Mail(tuple(envelope.rcpt_tos), str(message["Subject"]), names))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class MailSink:
    """Listens on 127.0.0.1:``port`` (a free one when 0); ``inbox`` holds what arrived."""

    def __init__(self, port: int = 0) -> None:
        self.inbox: list[Mail] = []
        self.port = port or _free_port()
        self._controller = Controller(_Handler(self.inbox), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
