"""Background tasks that belong to one component and never fail silently.

`asyncio.create_task` alone keeps only a weak reference to the task (it can be collected
mid-flight) and an exception in it surfaces, if at all, as "Task exception was never
retrieved" at garbage collection. Every component that starts work in the background holds
it in a `TaskSet` instead: a failure is logged with its traceback when it happens, counted
(per owner, for /metrics), handed to an optional callback, and `close()` cancels and awaits
whatever is still running, so nothing outlives its owner.

This module sits in `drivers/` because it is the lowest layer with I/O: drivers, the
service and the simulators all use it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Failed tasks by owner name since the process started; /metrics reads it.
FAILURES: collections.Counter[str] = collections.Counter()

FailureHandler = Callable[[asyncio.Task[Any], BaseException], None]


class TaskSet:
    """The tasks one component started; see the module docstring.

    ``expected`` names exception types that end a task in the normal course of things (a
    link going down under a request, say): they are neither logged nor counted.
    """

    def __init__(
        self,
        owner: str,
        *,
        logger: logging.Logger | None = None,
        expected: tuple[type[BaseException], ...] = (),
        on_failure: FailureHandler | None = None,
    ) -> None:
        self.owner = owner
        self.failed = 0
        self._log = logger or log
        self._expected = expected
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Starts ``coro`` as a task owned by this set.

        After `close()` the coroutine is closed unstarted and a RuntimeError raised: work
        started by a stopped component would run with nobody to stop it.
        """
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.owner}: task set is closed")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None or isinstance(exc, self._expected):
            return
        self.failed += 1
        FAILURES[self.owner] += 1
        self._log.error("%s: background task %s failed", self.owner, task.get_name(), exc_info=exc)
        if self._on_failure is not None:
            try:
                self._on_failure(task, exc)
            except Exception:
                self._log.exception("%s: failure handler failed", self.owner)

    async def close(self, grace: float | None = None) -> None:
        """Cancels every task still running and waits for them to end (at most ``grace``
        seconds, when given; a task that ignores cancellation longer is left behind, and
        logged)."""
        self._closed = True
        await cancel_and_wait(self._tasks, grace=grace, logger=self._log, owner=self.owner)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]],
    *,
    grace: float | None = None,
    logger: logging.Logger | None = None,
    owner: str = "",
) -> None:
    """Cancels ``tasks`` and waits for them; their results and exceptions are not raised
    here (a `TaskSet` has logged those already)."""
    # A task closing its own set neither cancels nor awaits itself.
    current = asyncio.current_task()
    pending = [task for task in tasks if not task.done() and task is not current]
    if not pending:
        return
    for task in pending:
        task.cancel()
    _done, still = await asyncio.wait(pending, timeout=grace)
    if still:
        (logger or log).warning(
            "%s: %d task(s) did not stop within %.1f s: %s",
            owner,
            len(still),
            grace or 0.0,
            ", ".join(sorted(task.get_name() for task in still)),
        )
