"""Fixtures: the stack starts only when a test asks for it (unit and contract tiers never do)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from shared.stack.stack import Stack
from tests.support.containers import docker_available
from tests.support.platform import Platform, Tenant
from tests.support.stack import start_test_stack

# Property tests check arithmetic, not speed: no per-example deadline, which a loaded machine would trip.
settings.register_profile("specs", deadline=None)
settings.load_profile("specs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked needs_docker are the only ones ever skipped: where no Docker engine answers."""
    marked = [item for item in items if "needs_docker" in item.keywords]
    if marked and not docker_available():
        skip = pytest.mark.skip(reason="needs a Docker engine (testcontainers path); none answers here")
        for item in marked:
            item.add_marker(skip)


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
