"""`accessd simulate panels …`: the panel simulator, run as ``python -m simulators.panel``.

accessd may not import the simulators (imports point one way), so the command starts the
simulator as a child process with this interpreter and passes every argument through as it
is: ``accessd simulate panels --help`` prints the simulator's own options. SIGINT, SIGTERM
and SIGHUP are forwarded to the child (which runs in its own process group, so a terminal's
Ctrl-C reaches it once, through us); the command exits with the child's status, or 128 + the
signal that ended it.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

PANEL_SIMULATOR = "simulators.panel"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_simulate_commands(sub: Any) -> None:
    """Adds `simulate panels` to the `accessd` parser."""
    p = sub.add_parser("simulate", help="simulated devices (the panel simulator)")
    acts = p.add_subparsers(dest="simulate_command", required=True, metavar="DEVICE")
    # No option of our own: with a prefix character no argument starts with, argparse hands
    # every word, --help included, to the simulator.
    panels = acts.add_parser(
        "panels",
        help="a fleet of MQTT panels (python -m simulators.panel; --help for its options)",
        add_help=False,
        prefix_chars="\0",
    )
    panels.add_argument("args", nargs=argparse.REMAINDER)
    panels.set_defaults(func=cmd_simulate_panels)


def cmd_simulate_panels(args: argparse.Namespace) -> int:
    return run_module(PANEL_SIMULATOR, args.args)


def run_module(module: str, argv: Sequence[str]) -> int:
    """Runs ``python -m module argv…`` and returns its exit status, forwarding signals."""
    # The arguments are the caller's own, for a program of ours: nothing is run by a shell.
    child = subprocess.Popen([sys.executable, "-m", module, *argv], process_group=0)  # noqa: S603

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # we are leaving on an exception: do not orphan it
            child.kill()
            child.wait()
    return 128 - status if status < 0 else status
