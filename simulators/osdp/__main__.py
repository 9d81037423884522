"""``python -m simulators.osdp``: simulated OSDP readers on a fresh pty.

    python -m simulators.osdp [--readers N] [--first-address A] [--echo]
        [--scbk-file FILE | --install-mode] [--require-secure]

Prints one JSON line, ``{"port": "/dev/pts/N", "addresses": [...]}``, then serves until
standard input closes or SIGTERM/SIGINT; the control panel opens that port. ``--echo``
serves no readers but sends back every byte it gets (the bare pty round trip, as a
benchmark baseline). ``--scbk-file`` gives every reader the secure-channel key in FILE
(32 hex digits; a file, so the key is in no process list), ``--install-mode`` lets them
take one by osdp_KEYSET. Exit status 0, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulators.osdp", description=__doc__)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--first-address", type=int, default=1)
    ap.add_argument("--echo", action="store_true", help="echo bytes back, no readers")
    ap.add_argument("--scbk-file", help="file holding the readers' SCBK as 32 hex digits")
    ap.add_argument("--install-mode", action="store_true", help="accept a key by KEYSET")
    ap.add_argument("--require-secure", action="store_true", help="refuse the clear")
    return ap


async def serve(args: argparse.Namespace, scbk: bytes | None) -> None:
    line = PtyLine()
    addresses: list[int] = []
    if args.echo:
        line.on_data(line.write)
    else:
        addresses = list(range(args.first_address, args.first_address + args.readers))
        ReaderBus(
            line,
            [
                SimulatedReader(
                    a,
                    scbk=scbk,
                    install_mode=args.install_mode,
                    require_secure=args.require_secure,
                )
                for a in addresses
            ],
        )
    line.start()
    print(json.dumps({"port": line.slave_path, "addresses": addresses}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Standard input closing (the parent went away) ends the simulator too.
    # (A file or /dev/null cannot be watched: then only the signals end it.)
    with contextlib.suppress(PermissionError, OSError):
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    with contextlib.suppress(Exception):
        loop.remove_reader(sys.stdin.fileno())
    await line.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    key = None
    if args.scbk_file:
        try:
            key = bytes.fromhex(Path(args.scbk_file).read_text().strip())
        except (OSError, ValueError) as exc:
            print(f"error: --scbk-file: {exc}", file=sys.stderr)
            return 2
        if len(key) != 16:
            print("error: an SCBK is 16 bytes (32 hex digits)", file=sys.stderr)
            return 2
    if args.readers < 1 or not 0 <= args.first_address <= 0x7E - args.readers + 1:
        print("error: readers must be >= 1 and their addresses within 0..0x7E", file=sys.stderr)
        return 2
    asyncio.run(serve(args, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
