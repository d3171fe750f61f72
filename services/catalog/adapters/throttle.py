"""Sign-in throttling (issue 17, item 8): API-key guessing was unthrottled. Moving-window limits, in memory,
per process (each replica keeps its own counts, so the cluster allows at most replicas x the limit):

- per client address: every exchange attempt counts (``SIGNIN_LIMIT_PER_CLIENT``, default 60 a minute);
- per API key id: every *failed* attempt counts (``SIGNIN_LIMIT_PER_KEY``, default 10 a minute); once over it,
  the key id is refused for the rest of the window even with the right secret, so its secret cannot be guessed.

Over a limit the caller gets 429 with ``Retry-After`` (whole seconds until the window lets one more through).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class Throttled(Exception):
    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(f"too many sign-in attempts {what}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class SignInLimits:
    per_client: str = "60/minute"
    per_key: str = "10/minute"


class SignInThrottle:
    def __init__(self, limits: SignInLimits) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client: RateLimitItem = parse(limits.per_client)
        self._per_key: RateLimitItem = parse(limits.per_key)

    async def attempt(self, client: str) -> None:
        """Count an attempt from ``client``; raises `Throttled` when it is over its limit."""
        if not await self._limiter.hit(self._per_client, "client", client):
            raise Throttled("from this address", await self._retry_after(self._per_client, "client", client))

    async def check_key(self, key_id: str) -> None:
        """Raises `Throttled` while ``key_id`` is over its limit of failures."""
        if not await self._limiter.test(self._per_key, "key", key_id):
            raise Throttled("for this API key", await self._retry_after(self._per_key, "key", key_id))

    async def failed(self, key_id: str) -> None:
        await self._limiter.hit(self._per_key, "key", key_id)

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        stats = await self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))
