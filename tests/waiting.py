"""Waiting in tests for something to become true, instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: Long enough for a loaded two-core machine running six workers; a passing test waits
#: only as long as the condition takes.
DEFAULT_SECONDS = 10.0


async def until(
    condition: Callable[[], object],
    seconds: float = DEFAULT_SECONDS,
    *,
    what: str = "",
    interval: float = 0.01,
) -> None:
    """Returns as soon as ``condition()`` is true; fails the test after ``seconds``.

    The message names ``what`` was awaited (or the condition's source name), so a timeout
    says which wait it was.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(f"not reached within {seconds:g} s: {name}")
        await asyncio.sleep(interval)
