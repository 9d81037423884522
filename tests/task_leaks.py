"""Fails an async test that leaves tasks running after it and its fixtures are done.

A task nobody stops is work that outlives its owner: a loop still polling a closed broker,
a writer holding rows, a reader on a line that is gone. Every component owns its tasks
(drivers/tasks.py) and stops them; this checks that it did, for every async test.

The check runs after every other fixture of the test is torn down (its fixture is set up
first), gives finishing tasks a short grace to end, and then names the tasks left.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest

#: Time for tasks that were cancelled or told to stop to run their last lines.
GRACE_SECONDS = 1.0

#: Marks a test that leaves tasks on purpose (none does today).
MARK = "leaks_tasks"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: the test may leave asyncio tasks running")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and inspect.iscoroutinefunction(item.obj)
            and item.get_closest_marker(MARK) is None
        ):
            item.fixturenames.insert(0, "no_leaked_tasks")


def _running(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t not in before and t is not current and not t.done()]


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    await fail_if_tasks_left(before)


async def fail_if_tasks_left(before: set[asyncio.Task[object]]) -> None:
    """Fails the test if tasks of this loop not in ``before`` still run after the grace
    (and cancels them). For a fixture on a loop other than the test's function loop, where
    `no_leaked_tasks` does not look: tests/browser/conftest.py's, on the session's loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GRACE_SECONDS
    leaked = _running(before)
    while leaked and loop.time() < deadline:
        await asyncio.sleep(0.01)
        leaked = _running(before)
    if leaked:
        names = ", ".join(sorted(f"{t.get_name()} ({t.get_coro()!r:.80})" for t in leaked))
        for task in leaked:
            task.cancel()
        pytest.fail(f"the test left {len(leaked)} task(s) running: {names}", pytrace=False)
