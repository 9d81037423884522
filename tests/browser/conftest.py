"""Fixtures of the browser tests: one headless Chromium and one `accessd serve` per worker,
a fresh context per test that keeps every request on this machine, and a screenshot of
the page when a test fails.

The tests use Playwright's async API on the session's event loop, which is where the
browser lives: its sync API marks its own loop as running in the thread between calls, and
every async test after it on the same worker then fails ("Cannot run the event loop while
another loop is running"). So every browser test carries
``pytest.mark.asyncio(loop_scope="session")`` (as its module's pytestmark, or its own);
collection refuses one that does not, which would fail with a confusing "attached to a
different loop".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.browser.chromium import MISSING, TIMEOUT_MS, Watch, launch, open_context
from tests.browser.served import Served, serve
from tests.conftest import PASSWORD
from tests.task_leaks import fail_if_tasks_left

#: The roles the browser tests log in with (each operator costs an argon2 hash at start).
ROLES = ("admin", "auditor")

#: The fixtures that put Chromium under a test.
_USES_BROWSER = ("chromium", "tab")

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()

# expect() waits 5 s by default, which a page rendering on a loaded machine can take.
expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test that uses Chromium `browser` and puts them in one xdist group: one
    worker runs them all with one Chromium, instead of one on each of six workers on two
    cores: measured with Playwright's driver, 350 MB (PSS) once launched and 700-800 MB
    with /docs or /redoc open, and a core while a page renders."""
    grouping = config.pluginmanager.hasplugin("xdist")
    wrong_loop: list[str] = []
    for item in items:
        if not any(name in getattr(item, "fixturenames", ()) for name in _USES_BROWSER):
            continue
        item.add_marker(pytest.mark.browser)
        if grouping:
            item.add_marker(pytest.mark.xdist_group("browser"))
        marker = item.get_closest_marker("asyncio")
        if marker is None or marker.kwargs.get("loop_scope") != "session":
            wrong_loop.append(item.nodeid)
    if wrong_loop:
        raise pytest.UsageError(
            "browser tests must be async and run on the session's loop, where Chromium lives "
            '(pytestmark = pytest.mark.asyncio(loop_scope="session")): ' + ", ".join(wrong_loop)
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Kept for the tab fixture's teardown, which takes a screenshot when the test failed.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, started once per worker (about a second with the driver)."""
    if MISSING is not None:
        pytest.skip(MISSING)
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="session")
def accessd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`accessd serve` on SQLite with an operator for each of `ROLES`, shared by a worker's
    browser tests: they only read, or log in, which leaves nothing another test would see."""
    with serve(tmp_path_factory.mktemp("accessd"), roles=ROLES, password=PASSWORD) as served:
        yield served


@dataclass
class Tab:
    """A page in a context of its own, and what it did that an offline page must not."""

    page: Page
    context: BrowserContext
    watch: Watch


@pytest_asyncio.fixture(loop_scope="session")
async def tab(
    chromium: Browser, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Tab]:
    """A page whose requests stay on this machine. A failed test leaves failure.png and
    failure.html in its tmp_path; a passing test fails here if its page had problems that
    it never looked at (`Watch.assert_clean`, `Watch.seen`)."""
    before = asyncio.all_tasks()
    context, watch = await open_context(chromium)
    page = await context.new_page()
    try:
        yield Tab(page, context, watch)
        report = request.node.stash.get(_REPORTS, {}).get("call")
        if report is not None and report.failed:
            await _keep_evidence(page, watch, tmp_path)
        elif report is not None and report.passed and not watch.looked_at and watch.problems():
            pytest.fail(
                "the page had problems the test never checked:\n" + "\n".join(watch.problems())
            )
    finally:
        await context.close()
    # The tests run on the session's loop, where the project's task-leak check does not look.
    await fail_if_tasks_left(before)


async def _keep_evidence(page: Page, watch: Watch, where: Path) -> None:
    shot, html = where / "failure.png", where / "failure.html"
    # The viewport only: a full-page shot of ReDoc's long page takes 15 s.
    await page.screenshot(path=shot)
    html.write_text(await page.content())
    # Printed in teardown: pytest shows it under the failure.
    print(f"browser: {page.url}\n  screenshot {shot}\n  html {html}")
    for problem in watch.problems():
        print(f"  {problem}")
