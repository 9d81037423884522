"""drivers/tasks.py: a failing background task is logged, counted and stops nothing else."""

from __future__ import annotations

import asyncio
import logging

import pytest

from drivers.tasks import FAILURES, TaskSet


class Boom(Exception):
    pass


class Expected(Exception):
    pass


async def fail(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


async def test_a_failing_task_is_logged_counted_and_handed_to_the_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, BaseException]] = []
    tasks = TaskSet("test-owner", on_failure=lambda task, exc: seen.append((task.get_name(), exc)))
    before = FAILURES["test-owner"]
    survivor = tasks.spawn(asyncio.sleep(60), name="survivor")
    with caplog.at_level(logging.ERROR):
        failing = tasks.spawn(fail(Boom("it broke")), name="failing")
        await asyncio.wait([failing])
        await asyncio.sleep(0)
    assert tasks.failed == 1
    assert FAILURES["test-owner"] == before + 1
    assert [(name, str(exc)) for name, exc in seen] == [("failing", "it broke")]
    record = next(r for r in caplog.records if "failing" in r.getMessage())
    assert "test-owner" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is Boom
    # The other task carries on; the failed one left the set.
    assert not survivor.done()
    assert list(tasks) == [survivor]
    await tasks.close()
    assert survivor.cancelled()
    assert len(tasks) == 0


async def test_expected_exceptions_and_cancellation_are_not_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("quiet-owner", expected=(Expected,))
    with caplog.at_level(logging.ERROR):
        done = tasks.spawn(fail(Expected("link down")))
        cancelled = tasks.spawn(asyncio.sleep(60))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.wait([done, cancelled])
        await asyncio.sleep(0)
    assert tasks.failed == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_failing_failure_handler_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    def handler(task: asyncio.Task[object], exc: BaseException) -> None:
        raise RuntimeError("handler bug")

    tasks = TaskSet("handler-owner", on_failure=handler)
    with caplog.at_level(logging.ERROR):
        await asyncio.wait([tasks.spawn(fail(Boom()))])
        await asyncio.sleep(0)
    assert tasks.failed == 1
    assert any("failure handler failed" in r.getMessage() for r in caplog.records)


async def test_close_waits_for_tasks_to_unwind_and_refuses_new_work() -> None:
    unwound = asyncio.Event()

    async def holds_a_resource() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)
            unwound.set()

    tasks = TaskSet("closing-owner")
    tasks.spawn(holds_a_resource())
    await asyncio.sleep(0)
    await tasks.close()
    assert unwound.is_set()
    assert tasks.closed
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        tasks.spawn(coro)


async def test_close_gives_up_on_a_task_that_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    tasks = TaskSet("stubborn-owner")
    task = tasks.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        await tasks.close(grace=0.05)
    assert any(
        "did not stop" in r.getMessage() and "stubborn" in r.getMessage() for r in caplog.records
    )
    release.set()
    await task
