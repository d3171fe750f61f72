"""The three ways a message leaves: SMTP email (aiosmtplib), an HTTP SMS gateway, and signed webhooks.

Each checks its target against the `OutboundPolicy` right before connecting, and raises `DeliveryFailed` with a
generic reason the tenant may see (the detail goes to the log); the delivery worker records it and retries.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from uuid import UUID

import aiosmtplib
import httpx
import structlog

from services.notification.adapters.targets import BlockedTarget, OutboundPolicy
from services.notification.domain.rules import sign

log = structlog.get_logger(__name__)

TIMEOUT_S = 15.0


class DeliveryFailed(Exception):
    """Why a delivery failed, in words safe to show the tenant (no banner, body or address of what answered)."""


@dataclass(frozen=True, slots=True)
class Email:
    host: str
    port: int
    sender: str
    sender_name: str | None
    starttls: bool
    username: str | None
    password: str | None
    to: str
    subject: str
    html: str
    notification_id: UUID
    attachment: tuple[str, bytes] | None = None
    unsubscribe_url: str | None = None  # List-Unsubscribe (RFC 2369) with one-click POST (RFC 8058)


class Channels:
    """Holds one HTTP client for the process; SMTP connections are per message."""

    def __init__(self, policy: OutboundPolicy | None = None) -> None:
        self._http = httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        self._policy = policy or OutboundPolicy()

    async def _allowed(self, check: Awaitable[None], what: str) -> None:
        try:
            await check
        except BlockedTarget as exc:
            raise DeliveryFailed(f"{what}: {exc}") from exc

    async def close(self) -> None:
        await self._http.aclose()

    async def email(self, m: Email) -> None:
        msg = EmailMessage()
        msg["From"] = formataddr((m.sender_name or "", m.sender))
        msg["To"] = m.to
        msg["Subject"] = m.subject
        msg["Message-ID"] = make_msgid(idstring=m.notification_id.hex)
        msg["X-Notification-Id"] = str(m.notification_id)
        if m.unsubscribe_url is not None:
            msg["List-Unsubscribe"] = f"<{m.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        await self._allowed(self._policy.check_host(m.host), "email")
        msg.set_content("This message is HTML; open it in a mail program that shows HTML.")
        msg.add_alternative(m.html, subtype="html")
        if m.attachment is not None:
            filename, content = m.attachment
            msg.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
        try:
            await aiosmtplib.send(
                msg,
                hostname=m.host,
                port=m.port,
                start_tls=m.starttls,
                use_tls=False,
                username=m.username,
                password=m.password,
                timeout=TIMEOUT_S,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("smtp_failed", host=m.host, port=m.port, error=f"{type(exc).__name__}: {exc}")
            raise DeliveryFailed("email: the mail server could not be reached or refused the message") from exc

    async def sms(
        self, *, url: str, token: str | None, sender: str | None, to: str, body: str, notification_id: UUID
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        doc = {"to": to, "from": sender, "body": body, "message_id": str(notification_id)}
        await self._post(url, json.dumps(doc).encode(), headers | {"Idempotency-Key": str(notification_id)})

    async def webhook(self, *, url: str, secret: str, body: bytes, notification_id: UUID, timestamp: int) -> None:
        headers = {
            "X-Signature": sign(secret, timestamp, body),
            "X-Notification-Id": str(notification_id),
            "Idempotency-Key": str(notification_id),
        }
        await self._post(url, body, headers)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        await self._allowed(self._policy.check_url(url), "POST")
        try:
            response = await self._http.post(url, content=body, headers=headers | {"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("post_failed", url=url, error=f"{type(exc).__name__}: {exc}")
            raise DeliveryFailed("POST: the endpoint could not be reached") from exc
        if response.status_code >= 300:
            log.warning("post_refused", url=url, status=response.status_code, body=response.text[:200])
            raise DeliveryFailed(f"POST: the endpoint answered HTTP {response.status_code}")
