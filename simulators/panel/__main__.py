"""``python -m simulators.panel``: run a fleet of simulated panels against a broker.

    python -m simulators.panel --broker HOST:PORT --site HQ --count N --credentials FILE
        [--passwords FILE] [--scenario FILE] [--duration S] [--state-dir DIR]
        [--doors-per-panel 2] [--prefix p] [--layout FILE] [--protocol 5|3]
        [--hook NAME=CMD ...] [--processes P]

``--layout`` runs a real site's panels, doors and readers by their names and ids (JSON, see
simulators/panel/layout.py) instead of ``--count`` numbered ones.

With a scenario it runs it and prints its report as one JSON object on stdout; without,
the panels stay up (heartbeats, decisions on command) for ``--duration`` seconds or until
SIGINT/SIGTERM, and then print the same report. Exit status 0, or 2 for bad arguments.

``--processes P`` (default: enough that none runs more than 200 panels, so that a large
fleet uses every core) runs the fleet in P child processes and prints their
merged report; simulators/panel/multiproc.py says how the panels and the scenario are split.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from simulators.panel.credentials import read_credentials
from simulators.panel.fleet import FleetConfig, start_fleet, stop_fleet
from simulators.panel.layout import read_layout
from simulators.panel.multiproc import (
    default_processes,
    fleet_layout,
    parse_shard,
    plan_shard,
    restore_steps,
    run_shards,
)
from simulators.panel.scenario import Runner, ScenarioError, load_scenario


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulators.panel", description=__doc__)
    parser.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--site", required=True)
    parser.add_argument("--count", type=int, default=1, help="number of panels")
    parser.add_argument("--credentials", type=Path, required=True, help="cards (JSON)")
    parser.add_argument(
        "--passwords", type=Path, help="JSON: broker user name (<site>.<panel>) → password"
    )
    parser.add_argument("--scenario", type=Path, help="a scenario YAML file")
    parser.add_argument("--duration", type=float, default=None, help="seconds without scenario")
    parser.add_argument("--state-dir", type=Path, help="panel buffers (default: a temp dir)")
    parser.add_argument("--doors-per-panel", type=int, default=2)
    parser.add_argument("--prefix", default="p", help="panel names are <prefix><n>")
    parser.add_argument("--layout", type=Path, help="the site's panels, doors, readers (JSON)")
    parser.add_argument("--protocol", type=int, choices=(3, 5), default=5)
    parser.add_argument("--decide-timeout", type=float, default=0.3)
    parser.add_argument("--heartbeat", type=float, default=60.0)
    parser.add_argument("--hook", action="append", default=[], metavar="NAME=CMD")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--processes", type=int, help="child processes (default: at most 200 panels each)"
    )
    # One child of a --processes run: the shard's index and the number of shards.
    parser.add_argument("--shard", type=parse_shard, help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit() or args.count < 1 or args.doors_per_panel < 1:
        parser.error("--broker is HOST:PORT; --count and --doors-per-panel are positive")
    if args.processes is not None and args.processes < 1:
        parser.error("--processes is positive")
    args.host, args.port = host, int(port)
    args.hooks = {}
    for hook in args.hook:
        name, sep, command = hook.partition("=")
        if not sep or not name or not command:
            parser.error(f"--hook {hook!r}: NAME=CMD")
        args.hooks[name] = command
    return args


async def main(args: argparse.Namespace) -> dict[str, Any]:
    cards = read_credentials(args.credentials)
    passwords: dict[str, str] = json.loads(args.passwords.read_text()) if args.passwords else {}
    scenario = load_scenario(args.scenario) if args.scenario else None
    layout = read_layout(args.layout) if args.layout else ()
    seed = (scenario or {}).get("seed", args.seed)
    steps: list[int] | None = None
    if args.shard is not None:
        plan = plan_shard(
            args.shard,
            layout or fleet_layout(args.count, args.prefix, args.doors_per_panel),
            cards,
            scenario,
        )
        layout, cards, scenario, steps = plan.layout, plan.cards, plan.scenario, plan.steps
        seed += args.shard.index
    with contextlib.ExitStack() as stack:
        state_dir = args.state_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="accessd-panels-"))
        )
        config = FleetConfig(
            host=args.host,
            port=args.port,
            site=args.site,
            count=args.count,
            state_dir=state_dir,
            passwords=passwords,
            prefix=args.prefix,
            doors_per_panel=args.doors_per_panel,
            protocol=args.protocol,
            decide_timeout=args.decide_timeout,
            heartbeat_seconds=args.heartbeat,
            layout=layout,
        )
        stop = asyncio.Event()
        if scenario is None:
            # Before the panels start: a signal while they connect (the parent of a
            # --processes run forwards one at any time) stops the run, not the process.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        panels = await start_fleet(config)
        try:
            runner = Runner(panels, cards, args.hooks, seed=seed)
            if scenario is not None:
                report = await runner.run(scenario)
                if steps is not None:
                    restore_steps(report, steps)
                return report
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
            return runner.report("idle", 0.0)
        finally:
            await stop_fleet(panels)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        processes = args.processes
        if args.shard is None:
            # Read in the parent too, so that a bad file is one error, not one a child.
            panels = len(read_layout(args.layout)) if args.layout else args.count
            if args.scenario:
                load_scenario(args.scenario)
            processes = min(processes or default_processes(panels), panels)
        if args.shard is None and processes > 1:
            argv = list(sys.argv[1:] if argv is None else argv)
            merged, status = asyncio.run(run_shards(argv, processes))
            if merged is not None:
                print(json.dumps(merged, sort_keys=True))
            return status
        report = asyncio.run(main(args))
    except (ScenarioError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(run())
