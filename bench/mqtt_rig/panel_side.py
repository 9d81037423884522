"""The panel side, a child process spoken to in JSON lines on its stdin and stdout: the
requester panels that drive the load, or a share of the cache panels for the revocation."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import sys
import time
from typing import Any

from drivers.mqtt.access import panel_username

from .cache_panels import CachePanel, connect_all, wait_all
from .load import Requester, drive
from .names import SITE, cache_name, requester_name


async def panel_side() -> None:
    """Answers the service side's commands until ``quit`` or the end of its stdin."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    def answer(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    cfg = json.loads(await stdin.readline())
    requesters = [
        Requester(cfg, i, cfg["passwords"][panel_username(SITE, requester_name(i))])
        for i in range(cfg["requesters"] if cfg["drive"] else 0)
    ]
    await asyncio.gather(*(r.connect() for r in requesters))
    answer({"ready": len(requesters)})
    caches: list[CachePanel] = []
    t_signal = 0.0
    while line := await stdin.readline():
        cmd = json.loads(line)
        what = cmd["cmd"]
        if what == "run":
            answer(await drive(requesters, cmd["target"], cmd["n"], cmd["in_flight"]))
        elif what == "caches":
            caches = [
                CachePanel(cfg, j, cfg["passwords"][panel_username(SITE, cache_name(j))])
                for j in range(*cfg["cache_range"])
            ]
            start = time.perf_counter()
            await connect_all(caches)
            connected = time.perf_counter() - start
            await wait_all([c.holding for c in caches], 120)
            answer(
                {
                    "connected": len(caches),
                    "connect_s": connected,
                    "holding": sum(1 for c in caches if c.targets),
                    "entries": statistics.mean(c.entries for c in caches) if caches else 0,
                    "ready_s": time.perf_counter() - start,
                }
            )
        elif what == "arm":
            for c in caches:
                c.armed = True
            t_signal = time.monotonic()
            answer({"armed": True})
        elif what == "collect":
            t0 = cmd["t0"]
            await wait_all([c.removed for c in caches], cmd["timeout"])
            got = [c.removed_at - t0 for c in caches if c.removed_at is not None]
            signal = [c.removed_at - t_signal for c in caches if c.removed_at is not None]
            read = [c.read_at - t0 for c in caches if c.read_at is not None]
            answer(
                {
                    "arrived": len(got),
                    "of": len(caches),
                    "last_s": max(got) if got else None,
                    "median_s": statistics.median(got) if got else None,
                    "first_s": min(got) if got else None,
                    "last_read_s": max(read) if read else None,
                    "last_from_signal_s": max(signal) if signal else None,
                    "times": got,
                }
            )
        elif what == "quit":
            break
    await asyncio.gather(*(r.close() for r in requesters), *(c.client.disconnect() for c in caches))
    answer({"bye": True})
