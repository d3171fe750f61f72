"""Where notification may connect: the outbound-target policy against server-side request forgery (issue 17).

Tenants set SMTP hosts, SMS gateway and webhook URLs. Unchecked, they pointed them at loopback, private ranges
and the cloud metadata address (``169.254.169.254``), the service connected, and the error it recorded told the
tenant what answered there (a port scanner). Now a target must resolve only to **public** addresses
(`ipaddress` ``is_global``: not loopback, private, link-local, carrier-grade NAT, documentation, reserved or
multicast) — checked when it is saved and again, after DNS resolution, right before each connection (a name
that later resolves elsewhere is refused then). ``OUTBOUND_ALLOW_HOSTS`` names hosts allowed anyway, for local
development (the local stack allows ``127.0.0.1`` and ``localhost`` for its mail and webhook sinks). What a
tenant sees of a failure is generic; the detail is in the service log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class BlockedTarget(Exception):
    """The host is not one notification sends to; the message is safe to show the tenant."""


class OutboundPolicy:
    def __init__(self, allow_hosts: frozenset[str] = frozenset()) -> None:
        self._allow = frozenset(h.strip().lower() for h in allow_hosts if h.strip())

    async def check_url(self, url: str) -> None:
        try:
            host = urlsplit(url).hostname
        except ValueError as exc:  # an unbalanced "[" or "]", a port that is not a number
            raise BlockedTarget("the URL cannot be read") from exc
        if not host:
            raise BlockedTarget("the URL has no host")
        await self.check_host(host)

    async def check_host(self, host: str) -> None:
        """Raises `BlockedTarget` unless ``host`` is allowed by name or resolves to public addresses only."""
        name = host.strip().lower().rstrip(".")
        if name in self._allow:
            return
        try:
            literal = ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            literal = None
        addresses = [literal] if literal is not None else await _resolve(name)
        if not addresses:
            raise BlockedTarget(f"{host!r} does not resolve")
        if not all(a.is_global and not a.is_multicast for a in addresses):
            raise BlockedTarget(
                f"{host!r} is not a public address (loopback, private, link-local and metadata ranges are refused)"
            )


async def _resolve(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, ValueError):  # UnicodeError (a ValueError): a name IDNA cannot encode
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
