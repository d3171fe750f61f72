"""Spec for sign-in throttling (issue 17, item 8): limits per client address and per API key id, with the seconds
to wait."""

from __future__ import annotations

import pytest

from services.catalog.adapters.throttle import SignInLimits, SignInThrottle, Throttled


class TestPerClient:
    async def test_the_attempt_over_the_limit_is_refused_with_the_seconds_to_wait(self) -> None:
        throttle = SignInThrottle(SignInLimits(per_client="3/minute"))
        for _ in range(3):
            await throttle.attempt("203.0.113.7")
        with pytest.raises(Throttled) as refused:
            await throttle.attempt("203.0.113.7")
        assert 1 <= refused.value.retry_after_s <= 60
        await throttle.attempt("198.51.100.1")  # another address is counted on its own


class TestPerKey:
    async def test_a_key_id_with_too_many_failures_is_refused_even_before_its_secret_is_checked(self) -> None:
        throttle = SignInThrottle(SignInLimits(per_key="2/minute"))
        await throttle.check_key("k1")
        await throttle.failed("k1")
        await throttle.failed("k1")
        with pytest.raises(Throttled, match="for this API key"):
            await throttle.check_key("k1")
        await throttle.check_key("k2")

    async def test_successes_do_not_count(self) -> None:
        throttle = SignInThrottle(SignInLimits(per_key="1/minute"))
        for _ in range(5):
            await throttle.check_key("k1")  # only failed() counts
