"""The service's long-lived state and CPython's cyclic garbage collector.

A running accessd holds hundreds of thousands of long-lived objects: the decision snapshot
(about 310,000 for 100,000 people) and the gateway's view of the panels. Every full pass of
the collector walks all of them with the event loop stopped: 130-160 ms each in
bench/decisions_mqtt.py, a good part of the 300 ms a panel waits for a decision, and the
passes come every few tens of thousands of decisions. Once that state is built,
`freeze_long_lived` collects once and moves everything alive to the permanent generation,
which the collector never walks again. What later dies of it is still freed by reference
counting; only a frozen reference cycle would stay, and the snapshot holds none.

Freezing is process-wide, so only a process that is accessd does it: `accessd serve` turns
``gc_freeze`` on; an embedded app (tests, another program) leaves it off.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_long_lived(what: str) -> float:
    """Collects, then freezes what is alive; returns the seconds it took."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    seconds = time.perf_counter() - started
    log.info(
        "%s built: %d objects moved out of the collector's reach in %.3f s",
        what,
        gc.get_freeze_count(),
        seconds,
    )
    return seconds
