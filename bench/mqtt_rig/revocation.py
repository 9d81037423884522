"""Revocation to every cache panel: one credential of the door they share is suspended, and
the figure is until the last panel has decoded a delta removing its hash."""

from __future__ import annotations

import statistics
import time
from typing import Any

from .names import REVOKED
from .processes import PanelSides
from .report import say
from .service import Service


async def measure_revocation(service: Service, sides: PanelSides) -> dict[str, Any]:
    """``revocation_s`` (None unless every panel got the delta) and ``revocation_panels``."""
    fleets = sides.fleets
    cs = await sides.caches()
    say(
        f"cache panels in {len(fleets)} processes: "
        f"{sum(c['connected'] for c in cs)} connected in "
        f"{max(c['connect_s'] for c in cs):.1f} s, {sum(c['holding'] for c in cs)} hold "
        f"the credential (about {statistics.mean(c['entries'] for c in cs):.0f} entries "
        f"each), ready after {max(c['ready_s'] for c in cs):.1f} s"
    )
    await sides.arm()
    deltas_before = service.gateway.caches.deltas_sent
    start = time.monotonic()
    await service.suspend(REVOKED)
    committed = time.monotonic() - start
    parts = await sides.collect(start, 30)
    times = [x for p in parts for x in p["times"]]
    rev = {
        "arrived": len(times),
        "of": sum(p["of"] for p in parts),
        "first_s": min(times, default=float("nan")),
        "median_s": statistics.median(times) if times else float("nan"),
        "last_s": max(times, default=float("nan")),
        "last_read_s": max((p["last_read_s"] or 0.0) for p in parts),
        "last_from_signal_s": max((p["last_from_signal_s"] or 0.0) for p in parts),
    }
    say(
        f"revocation: committed in {committed * 1000:.1f} ms; delta removing it decoded "
        f"by {rev['arrived']}/{rev['of']} panels; first {rev['first_s']:.3f} s, "
        f"median {rev['median_s']:.3f} s, last {rev['last_s']:.3f} s "
        f"(read off the socket by {rev['last_read_s']:.3f} s; "
        f"from the panel side's start signal {rev['last_from_signal_s']:.3f} s); "
        f"gateway sent {service.gateway.caches.deltas_sent - deltas_before} deltas"
    )
    return {
        "revocation_s": rev["last_s"] if rev["arrived"] == rev["of"] else None,
        "revocation_panels": rev["of"],
    }
