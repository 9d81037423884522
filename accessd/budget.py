"""How many of one source's bad messages become records: a token bucket each.

Every malformed or spoofed panel message (the MQTT gateway), and every request a door
reader account makes at a reader it does not serve (the API's audit), is evidence worth a
record, until one source (broken firmware, a stolen login) sends thousands a second: then
each is a write that everything else queues behind, or an audit log filled with one line.
Past its budget a source's messages are counted and not recorded, and said in the log once
per source per ``report_every`` seconds with the count since the last line, never once a
message. Other sources keep their own budgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Rows a panel may have recorded at once, then a row per RATE seconds.
BURST = 20
#: Malformed messages recorded per second, in the long run, per panel.
RATE = 1.0
#: Seconds between two log lines about the same panel's dropped messages.
REPORT_EVERY = 60.0


@dataclass
class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second."""

    rate: float
    burst: float
    tokens: float
    last: float

    def take(self, now: float) -> bool:
        """Takes a token if one is left at ``now``."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class _Panel:
    bucket: TokenBucket
    dropped: int = 0  # since the last log line
    reported: float | None = None


class RecordBudget:
    """Per source, whether its next bad message may be recorded (see the module)."""

    def __init__(
        self,
        *,
        rate: float = RATE,
        burst: int = BURST,
        report_every: float = REPORT_EVERY,
        clock: Callable[[], float] = time.monotonic,
        subject: str = "panel",
        what: str = "malformed or spoofed messages",
    ) -> None:
        #: Who sends (the log line's first word), and what it sends too much of.
        self.subject = subject
        self.what = what
        self.rate = rate
        self.burst = burst
        self.report_every = report_every
        self._clock = clock
        self._panels: dict[int, _Panel] = {}
        #: Malformed messages dropped unrecorded, over all panels.
        self.dropped = 0

    def allow(self, panel_id: int, name: str) -> bool:
        """Whether panel ``panel_id`` (``name`` for the log) may have this one recorded; a
        refusal is counted, and logged at most once per ``report_every``."""
        now = self._clock()
        state = self._panels.get(panel_id)
        if state is None:
            state = self._panels[panel_id] = _Panel(
                TokenBucket(self.rate, self.burst, self.burst, now)
            )
        if state.bucket.take(now):
            return True
        self.dropped += 1
        state.dropped += 1
        if state.reported is None or now - state.reported >= self.report_every:
            log.warning(
                "%s %s sends %s past its budget (%d, then %g a second): %d dropped "
                "unrecorded since the last report, the rest of the next %g s are only counted",
                self.subject,
                name,
                self.what,
                self.burst,
                self.rate,
                state.dropped,
                self.report_every,
            )
            state.reported = now
            state.dropped = 0
        return False
