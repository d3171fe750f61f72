"""Fixtures: the stack starts only when a test asks for it (unit and contract tiers never do)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.stack.stack import Stack
from tests.support.platform import Platform, Tenant
from tests.support.stack import start_test_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    yield from start_test_stack()


@pytest.fixture(scope="session")
async def platform(stack: Stack) -> AsyncIterator[Platform]:
    p = Platform(stack)
    yield p
    await p.close()


@pytest.fixture
async def tenant(platform: Platform) -> Tenant:
    """A fresh sandbox tenant per test, so tests never see each other's data."""
    return await platform.sandbox_tenant()
