"""Benchmark: access decisions from simulated panels through Mosquitto and the MQTT gateway.

Targets, with 100,000 people in PostgreSQL and every decision stored: at 64
requests in flight at least 0.6x the throughput of a bare paho echo responder on the same
broker; sequential p99 under 2 ms; a revocation reaching 500 panels' caches in under 1 s.

Two processes on one private Mosquitto started from deploy/mosquitto/accessd.conf (a free
port, generated logins and ACL):

- the service side (this process): a scratch PostgreSQL database filled with COPY (people,
  security records, credentials, a site of requester panels and cache panels), the real
  DecisionService, card authentication and `MqttGateway` (shared subscription), and, as the
  baselines measured in the same run, two echo responders that answer every request with
  one fixed reply, each on its own shared subscription: a bare paho client as a paho user
  writes one (paho's network thread, the reply published from ``on_message``), and an
  `MqttClient` (paho driven from the event loop, as the gateway's is). The faster of the two
  is the figure the gateway is held to;
- the panel side (a child process): requester panels, each an `MqttClient` with its own
  panel login, sending `DecideRequest`s (card UUID plus the reader's word for ``pki_cak``,
  so no PKI crypto runs; four in five people at a door one of their levels opens) and
  matching replies by id; the same clients' payloads go to the echoes on ``bench/echo/…``
  and ``bench/paho/…``.

Measured, echo and gateway interleaved round by round, the median of the rounds kept:

1. throughput with ``--in-flight`` requests outstanding in total (64), and latency of one
   request at a time (p50, p99), requester side;
2. that every decision was stored: rows in ``decision_events`` against replies received;
3. revocation: ``--panels`` cache panels (500), each its own login subscribed to its
   ``cred/#``, hold the snapshot of a door all of them share; one credential of it is
   suspended through `accessd.services.credentials.transition` and the session committed
   (the bus event the gateway follows); the figure is until the last panel has decoded a
   delta removing that credential's hash. Both processes read CLOCK_MONOTONIC, which is
   system-wide on Linux; the panel side also reports times from a start signal it got
   before the service side took its clock (an upper bound, one pipe round trip more).

    python bench/decisions_mqtt.py [--people 100000] [--panels 500] [--in-flight 64]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]

The last line printed is JSON: {"decisions_per_s": …, "echo_per_s": …, "ratio": …,
"seq_p99_ms": …, "echo_seq_p99_ms": …, "revocation_500_panels_s": …}.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mqtt_rig.broker import broker_for, logins  # noqa: E402
from mqtt_rig.database import populate, scratch_database  # noqa: E402
from mqtt_rig.echoes import Echoes  # noqa: E402
from mqtt_rig.gc_pauses import GcPauses  # noqa: E402
from mqtt_rig.names import ECHO_USER, ECHOES  # noqa: E402
from mqtt_rig.panel_side import panel_side  # noqa: E402
from mqtt_rig.processes import PanelSides  # noqa: E402
from mqtt_rig.report import print_results, say, say_replies, say_run  # noqa: E402
from mqtt_rig.revocation import measure_revocation  # noqa: E402
from mqtt_rig.runs import Runs  # noqa: E402
from mqtt_rig.service import Service  # noqa: E402

#: Requests to each echo and the gateway before the rounds, 64 in flight.
WARM_UP = 2000


async def service_side(args: argparse.Namespace, url: str) -> dict[str, Any]:
    panels, passwords = logins(args.requesters, args.panels)
    broker = broker_for(passwords, panels)
    broker.start()
    service = Service(url, broker.port, passwords)
    echoes = Echoes(broker.port, passwords[ECHO_USER])
    sides = PanelSides(SELF)
    try:
        t0 = time.perf_counter()
        result: dict[str, Any] = {"gateway_start_s": await service.start()}
        await echoes.start()
        requesters = await sides.start(
            port=broker.port,
            passwords=passwords,
            people=args.people,
            requesters=args.requesters,
            panels=args.panels,
        )
        say(f"panel side: {requesters} requester panels connected (and as many echo clients)")
        say(f"set-up took {time.perf_counter() - t0:.1f} s")

        for target in (*ECHOES, "gateway"):
            await sides.run(target, WARM_UP, 64)
        runs = Runs()
        pauses = GcPauses()
        for rnd in range(args.rounds):
            for mode, n, flight in (
                ("flight", args.requests, args.in_flight),
                ("seq", args.seq_requests, 1),
            ):
                for target in (*ECHOES, "gateway"):
                    # Each run starts quiet: the decisions of the run before are written.
                    await service.decisions.store.flush()
                    pauses.clear()
                    r = await sides.run(target, n, flight)
                    runs.add(target, mode, r)
                    say_run(rnd, target, mode, flight, r, pauses, service.decisions.store.queued)
        say_replies(runs, echoes.reply)
        result |= runs.figures()

        # Every decision stored: the rows against what the panels got back.
        result["stored_ok"] = await service.every_decision_stored(runs.gateway_sent() + WARM_UP)
        result |= await measure_revocation(service, sides)
        await sides.quit()
    finally:
        # The broker and children go even when stopping the service fails.
        try:
            await echoes.stop()
            await service.stop()
        finally:
            await sides.kill()
            broker.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--panels", type=int, default=500, help="cache panels for the revocation")
    ap.add_argument("--shared-people", type=int, default=1000, help="people the shared door opens")
    ap.add_argument("--requesters", type=int, default=64, help="requesting panels (clients)")
    ap.add_argument("--in-flight", type=int, default=64, help="requests outstanding in total")
    ap.add_argument("--requests", type=int, default=20_000, help="per throughput run")
    ap.add_argument("--seq-requests", type=int, default=3000, help="per sequential run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--panel-side", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.panel_side:
        asyncio.run(panel_side())
        return
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with scratch_database(args.pg) as url:
        t0 = time.perf_counter()
        asyncio.run(populate(url, args.people, args.requesters, args.panels, args.shared_people))
        say(
            f"populated {args.people:,} people and credentials, {args.requesters} requester "
            f"panels, {args.panels} cache panels in {time.perf_counter() - t0:.1f} s"
        )
        res = asyncio.run(service_side(args, url))
    print_results(res, args.in_flight)


if __name__ == "__main__":
    main()
