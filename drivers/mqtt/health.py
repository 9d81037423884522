"""Whether a broker link is up and since when, and the few log lines an outage gets.

A broker that is away makes a reconnecting session fail every few seconds for as long as
it stays away. A line per attempt (let alone a traceback) buries the one that matters, so
`LinkHealth` logs the first failed attempt of an outage as a warning with its cause,
counts the rest, reminds with the count at most once a minute, and logs the recovery with
the outage's length and count. `status()` is what /readyz and /metrics show.

The error text is the driver's own message (broker address, errno, CONNACK reason code);
the password never reaches an MqttError, so it never reaches this module either.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)

_REMIND_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """One link as an operator needs it; ``since`` and ``seconds`` date the current state
    (None and 0 before the link first tried to connect)."""

    client_id: str
    broker: str
    connected: bool
    since: datetime | None
    seconds: float
    #: Failed attempts since the link was last up (or began).
    attempts: int
    #: Why the last attempt or the last connection failed, in words; None while up.
    last_error: str | None
    #: Since the link began: accepted connections and failed attempts.
    connections: int
    failures: int


class LinkHealth:
    """A link's view of its broker; the link calls `begin`, `failed`, `up` and `down`."""

    def __init__(
        self,
        client_id: str,
        broker: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client_id = client_id
        self.broker = broker
        self._clock = clock
        self._wall = wall
        self.connected = False
        self.since: datetime | None = None
        self._since_clock = 0.0
        self.attempts = 0
        self.last_error: str | None = None
        self.connections = 0
        self.failures = 0
        self._reminded = 0.0
        self._closed = False

    def status(self) -> LinkStatus:
        return LinkStatus(
            client_id=self.client_id,
            broker=self.broker,
            connected=self.connected,
            since=self.since,
            seconds=round(self._clock() - self._since_clock, 1) if self.since else 0.0,
            attempts=self.attempts,
            last_error=self.last_error,
            connections=self.connections,
            failures=self.failures,
        )

    def begin(self) -> None:
        """The link starts connecting: down from now until `up`."""
        if self.since is None:
            self._mark(connected=False)

    def failed(self, error: BaseException) -> None:
        """A connection attempt failed; the first of an outage is logged, the rest counted."""
        now = self._clock()
        self.attempts += 1
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}".strip().rstrip(":")
        if self.attempts == 1:
            self._reminded = now
            log.warning(
                "%s cannot connect to the MQTT broker %s (%s); retrying in the background, "
                "further failures are counted",
                self.client_id,
                self.broker,
                self.last_error,
            )
        elif now - self._reminded >= _REMIND_EVERY:
            self._reminded = now
            log.warning(
                "%s still cannot connect to the MQTT broker %s after %.0f s: %d attempts "
                "failed (last: %s)",
                self.client_id,
                self.broker,
                now - self._since_clock,
                self.attempts,
                self.last_error,
            )

    def up(self) -> None:
        """Connected, with the subscriptions in place."""
        if self.attempts:
            log.warning(
                "%s connected to the MQTT broker %s after %.1f s and %d failed %s",
                self.client_id,
                self.broker,
                self._clock() - self._since_clock,
                self.attempts,
                "attempt" if self.attempts == 1 else "attempts",
            )
        self.connections += 1
        self.attempts = 0
        self.last_error = None
        self._mark(connected=True)

    def down(self, reason: str) -> None:
        """An open connection dropped; ``reason`` is the driver's word for why."""
        if self._closed or not self.connected:
            return
        # Info, as a blip that the next attempt mends is routine (panels on a flaky link);
        # an attempt that fails after it is the warning.
        log.info("MQTT connection of %s to %s lost: %s", self.client_id, self.broker, reason)
        self.last_error = f"connection lost: {reason}"
        self._mark(connected=False)

    def close(self) -> None:
        """The link is closed on purpose: nothing more is logged."""
        self._closed = True
        self.connected = False

    def _mark(self, *, connected: bool) -> None:
        self.connected = connected
        self.since = self._wall()
        self._since_clock = self._clock()
