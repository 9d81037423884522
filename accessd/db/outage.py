"""Telling "the database is away" from any other error, and saying so once, not every time.

During an outage every request, every batch write and every feed poll fails the same way,
several times a second. Logging each with a traceback buries the one line that matters and
fills the disk. `DatabaseHealth` logs the first failure of an outage as a warning (what
failed and why), counts the rest, logs a reminder with the count at most once a minute,
and logs the recovery with the outage's length and count. The HTTP layer answers such a
failure with 503 and Retry-After instead of 500.

What counts as "away": no connection could be made or kept (refused, reset, timed out,
pool exhausted waiting for one), or the server cancelled the statement at its timeout.
Anything else, a constraint violation or a bug, is not an outage and is not hidden here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

#: Seconds a client is told to wait before trying again (Retry-After).
RETRY_AFTER_SECONDS = 5
_REMIND_EVERY = 60.0


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached or did not answer in time."""
    if isinstance(error, (OSError, TimeoutError, sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            # SQLite's "database is locked" is an OperationalError too: busy, not away,
            # and it has its own timeout; still, the request can be retried.
            return True
        # SQLAlchemy's asyncpg adapter wraps the driver's exception: look underneath.
        return any(_driver_unavailable(e) for e in _chain(error.orig))
    # Raised from (cause) or while handling (context) an outage: an error of the cleanup
    # after a lost connection (a rollback on a closed one) is the outage too.
    return any(is_unavailable(e) for e in _chain(error.__cause__ or error.__context__))


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen and len(seen) < 8:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _driver_unavailable(error: BaseException) -> bool:
    return isinstance(error, (OSError, TimeoutError)) or type(error).__name__ in _DRIVER_NAMES


#: asyncpg's exceptions for a connection lost, refused or a statement cancelled at its
#: timeout, by name: the driver is optional (SQLite deployments do without it).
_DRIVER_NAMES = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "QueryCanceledError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)


class DatabaseHealth:
    """The process's view of its database: up, or away since when (see the module)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.down_since: float | None = None
        self.failures = 0  # during the current outage
        self.outages = 0
        self.total_failures = 0
        self.last_error = ""
        self._reminded = 0.0

    @property
    def available(self) -> bool:
        return self.down_since is None

    def failed(self, what: str, error: BaseException) -> None:
        """Notes a failure of ``what`` (e.g. "decision writer") that `is_unavailable`."""
        now = self._clock()
        self.failures += 1
        self.total_failures += 1
        self.last_error = f"{type(error).__name__}: {error}".strip().rstrip(":")
        if self.down_since is None:
            self.down_since = self._reminded = now
            self.outages += 1
            log.warning(
                "database unavailable (%s failed: %s); retrying, further failures are counted",
                what,
                self.last_error,
            )
        elif now - self._reminded >= _REMIND_EVERY:
            self._reminded = now
            log.warning(
                "database still unavailable after %.0f s: %d failures so far (last: %s)",
                now - self.down_since,
                self.failures,
                self.last_error,
            )

    def now(self) -> float:
        """The clock `succeeded` takes its ``started`` from."""
        return self._clock()

    def succeeded(self, started: float | None = None) -> None:
        """Notes that the database answered; ends an outage if there was one.

        ``started``: when the operation that succeeded began. One that began before the
        outage was noticed (a write already under way) proves nothing about now."""
        if self.down_since is None or (started is not None and started < self.down_since):
            return
        log.warning(
            "database back after %.1f s; %d operations failed meanwhile",
            self._clock() - self.down_since,
            self.failures,
        )
        self.down_since = None
        self.failures = 0
