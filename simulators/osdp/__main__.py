"""``python -m simulators.osdp``: simulated OSDP readers on a fresh pty.

    python -m simulators.osdp [--readers N] [--first-address A] [--echo]

Prints one JSON line, ``{"port": "/dev/pts/N", "addresses": [...]}``, then serves until
standard input closes or SIGTERM/SIGINT; the control panel opens that port. ``--echo``
serves no readers but sends back every byte it gets (the bare pty round trip, as a
benchmark baseline). Exit status 0, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulators.osdp", description=__doc__)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--first-address", type=int, default=1)
    ap.add_argument("--echo", action="store_true", help="echo bytes back, no readers")
    return ap


async def serve(args: argparse.Namespace) -> None:
    line = PtyLine()
    addresses: list[int] = []
    if args.echo:
        line.on_data(line.write)
    else:
        addresses = list(range(args.first_address, args.first_address + args.readers))
        ReaderBus(line, [SimulatedReader(a) for a in addresses])
    line.start()
    print(json.dumps({"port": line.slave_path, "addresses": addresses}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Standard input closing (the parent went away) ends the simulator too.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    with contextlib.suppress(Exception):
        loop.remove_reader(sys.stdin.fileno())
    await line.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.readers < 1 or not 0 <= args.first_address <= 0x7E - args.readers + 1:
        print("error: readers must be >= 1 and their addresses within 0..0x7E", file=sys.stderr)
        return 2
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
