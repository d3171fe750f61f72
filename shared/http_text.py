"""Text the database cannot store is refused at the door, naming where it is (issue 17, item 7).

Postgres refuses NUL characters in text and jsonb, and strings with an unpaired UTF-16 surrogate cannot even be
encoded: a name, filter, description or template carrying one reached the database and came back as a 500. This
ASGI middleware, on every service, answers such a request 422 before any route runs: ``loc`` is the JSON path of
the first offending string (``["body", "users", 0, "name"]``) or the query parameter. A JSON body is buffered and
handed on unchanged; only a body that contains a suspicious escape or byte is parsed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SUSPICIOUS = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
MAX_BODY_BYTES = 16 * 1024 * 1024
"""No JSON body is read past this (a route may allow less: a catalog import 5 MiB)."""
MESSAGE = "contains a character that cannot be stored (NUL, or an unpaired UTF-16 surrogate)"


def unstorable(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def first_unstorable(value: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The JSON path of the first string (a key or a value) the database cannot store, if any."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if unstorable(node):
                return where
        elif isinstance(node, dict):
            for k, v in node.items():
                if unstorable(str(k)):
                    return (*where, k)
                stack.append((v, (*where, k)))
        elif isinstance(node, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(node))
    return None


class RejectUnstorableText:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if unstorable(name) or unstorable(value):
                await _refuse(send, ["query", name])
                return
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b"") or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        chunks, more, size = [], True, 0
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(b"", receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY_BYTES:
                await _respond(send, 413, {"detail": f"the request body is over {MAX_BODY_BYTES} bytes"})
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if SUSPICIOUS.search(body):
            try:
                where = first_unstorable(json.loads(body))
            except (ValueError, RecursionError):
                where = None  # not JSON: the route answers that
            if where is not None:
                await _refuse(send, ["body", *where])
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, loc: list[Any]) -> None:
    await _respond(send, 422, {"detail": [{"loc": loc, "msg": MESSAGE, "type": "unstorable_text"}]})


async def _respond(send: Send, status: int, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
