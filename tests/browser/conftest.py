"""Browser tests: real headless Chromium (Debian's `chromium` package, which the project's setup and .ci/run
install) driven by Playwright's Python API pointed at that executable — never Playwright's own browser
download. Without a chromium on the machine these tests skip, saying so; CI installs it, so there they run.

Each main page is saved as a PNG under build/screenshots/ (git-ignored) for review."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"


def chromium_path() -> str | None:
    given = os.environ.get("MSP_CHROMIUM")
    if given:
        return given
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if not mine:
        return
    reason = None
    if chromium_path() is None:
        reason = "no chromium executable (apt-get install chromium; .ci/run installs it)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is not installed (pip install -e '.[dev]')"
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):  # only this run's pages are left for review
        old.unlink()
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        await launched.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the screenshots are, whenever this run took any."""
    taken = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.exists() else []
    if taken:
        terminalreporter.write_line(f"dashboard screenshots ({len(taken)}): {SCREENSHOTS}/")


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    opened = await context.new_page()
    yield opened
    await context.close()


async def screenshot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
