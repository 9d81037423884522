"""The `accessd demo` command line: its options and the call into accessd.demo.run.

Kept apart from accessd.demo.run so that building the `accessd` parser does not import the whole
demo (its models, services and subprocess machinery): every command would pay for it.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from accessd.cli.common import settings_from
from accessd.demo.options import DemoOptions


def when(text: str) -> datetime:
    """``--at``'s value: an ISO 8601 date or date-time, with or without a UTC offset."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time such as 2026-12-07T10:00 "
            "or 2026-12-07T10:00-05:00"
        ) from None


def add_demo_options(parser: argparse.ArgumentParser) -> None:
    """The options of `accessd demo` (host and port included)."""
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DemoOptions.state_dir,
        help="cards, test PKI, broker logins, kept across runs (default .accessd-demo)",
    )
    parser.add_argument("--exit-after", type=float, metavar="SECONDS", help="stop after this")
    parser.add_argument(
        "--no-panels", action="store_true", help="the API alone: no broker, cards or panels"
    )
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default=DemoOptions.broker,
        help="auto (default): Mosquitto when installed, else the embedded amqtt",
    )
    parser.add_argument("--pki-port", type=int, default=DemoOptions.pki_port)
    parser.add_argument(
        "--round-seconds",
        type=float,
        default=DemoOptions.round_seconds,
        help="every card is presented once in each round of this length",
    )
    parser.add_argument(
        "--at",
        type=when,
        metavar="WHEN",
        help="the simulated panels present cards as if at this time (ISO 8601, e.g. "
        "2026-12-07T10:00 in the site's timezone, or with an offset), running on from it",
    )


def add_demo_command(sub: Any) -> None:
    """Adds `demo` to the `accessd` parser."""
    p = sub.add_parser(
        "demo", help="sample data, a broker, simulated panels and cards, and the API"
    )
    add_demo_options(p)
    p.set_defaults(func=cmd_demo)


def options_from(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        state_dir=args.state_dir,
        exit_after=args.exit_after,
        panels=not args.no_panels,
        broker=args.broker,
        pki_port=args.pki_port,
        round_seconds=args.round_seconds,
        at=args.at,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from accessd.demo.run import run_demo  # the demo's imports only when it runs

    settings = settings_from(args)
    return run_demo(
        settings,
        host=args.host or settings.host,
        port=args.port or settings.port,
        options=options_from(args),
    )
