"""``python -m simulators.panel.demo``: the simulated side of ``accessd demo`` in one process.

    python -m simulators.panel.demo --dir DIR --holders FILE [--pki-port 8099]
        --broker HOST:PORT --site SITE --layout FILE --passwords FILE [--round-seconds 20]
        [--rounds N] [--protocol 5|3]

1. Issues a test-PKI card for every holder of ``--holders`` (JSON list of ``{"holder",
   "name", "card_uuid"}``) or, when ``DIR`` holds the PKI and cards of an earlier run, loads
   them, so a database bound to those cards keeps working. Writes ``DIR/anchors/root.pem``
   and ``ca.pem`` (to trust) and ``DIR/cards-public.json``: per holder the card UUID, FASC-N,
   expiry and certificate fingerprints to bind (no keys, no PINs; still 0600).
2. Serves the PKI's repository (CRLs, OCSP) on 127.0.0.1 at the port in its certificates.
3. Prints one JSON line on stdout (``{"ready": …}``) and waits for a line on stdin: the
   caller binds the cards and starts the service meanwhile (EOF: exit without panels).
   The line is ``go``, or ``go WHEN`` with an ISO 8601 date-time and its UTC offset: the
   readers then present the cards as if it were WHEN, and time runs on from there.
4. Runs the ``--layout`` panels against the broker: in every round each card is presented
   once at a random reader within ``--round-seconds``; a line per round on stderr.

Runs until SIGINT/SIGTERM (or ``--rounds``). Exit status 0, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization

from simulators.panel.credentials import read_credentials, write_credentials
from simulators.panel.fleet import FleetConfig, start_fleet, stop_fleet
from simulators.panel.layout import read_layout
from simulators.panel.scenario import Runner
from simulators.pki import CardMaterial, PkiServer, TestPki
from simulators.pki.store import load_pki, save_pki

PKI_FILE = "pki.json"
CARDS_FILE = "cards.json"
PUBLIC_FILE = "cards-public.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulators.panel.demo", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="PKI, cards and anchors")
    parser.add_argument("--holders", type=Path, required=True, help="who gets a card (JSON)")
    parser.add_argument("--pki-port", type=int, default=8099)
    parser.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--site", required=True)
    parser.add_argument("--layout", type=Path, required=True, help="panels, doors, readers")
    parser.add_argument("--passwords", type=Path, required=True, help="panel user → password")
    parser.add_argument("--round-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=0, help="0: until stopped")
    parser.add_argument("--state-dir", type=Path, help="panel buffers (default DIR/panels)")
    parser.add_argument(
        "--protocol", type=int, choices=(3, 5), default=5, help="MQTT 5, or 3 for 3.1.1"
    )
    args = parser.parse_args(argv)
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit() or args.round_seconds <= 0:
        parser.error("--broker is HOST:PORT; --round-seconds is positive")
    args.host, args.port = host, int(port)
    return args


def issue_or_load(
    directory: Path, holders: list[dict[str, str]], port: int
) -> tuple[TestPki, dict[str, CardMaterial]]:
    """The PKI and holder → card: the earlier run's when it has every holder, else new."""
    pki_path, cards_path = directory / PKI_FILE, directory / CARDS_FILE
    wanted = {h["card_uuid"]: h["holder"] for h in holders}
    if pki_path.exists() and cards_path.exists():
        pki = load_pki(pki_path)
        cards = {c.card_uuid: c for c in read_credentials(cards_path)}
        if set(wanted) <= set(cards):
            return pki, {wanted[u]: cards[u] for u in wanted}
    pki = TestPki.create(f"http://127.0.0.1:{port}")
    issued = {
        h["holder"]: pki.issue_card(name=h["name"], card_uuid=h["card_uuid"]) for h in holders
    }
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    save_pki(pki, pki_path)
    write_credentials(cards_path, list(issued.values()))
    return pki, issued


def public_summary(cards: dict[str, CardMaterial]) -> list[dict[str, Any]]:
    """What the service binds to each holder's credential."""
    return [
        {
            "holder": holder,
            "name": card.name,
            "card_uuid": card.card_uuid,
            "fasc_n": card.fascn.hex(),
            "expires": card.expires.isoformat(),
            "certificates": {
                slot.upper(): cert.fingerprint(hashes.SHA256()).hex()
                for slot, cert in card.certificates.items()
                if slot in ("9a", "9e")
            },
        }
        for holder, card in cards.items()
    ]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _round_line(n: int, report: dict[str, Any]) -> str:
    steps = [s for s in report["steps"] if "presented" in s]
    presented = sum(s["presented"] for s in steps)
    granted = sum(s["granted"] for s in steps)
    offline = sum(s["offline"] for s in steps)
    return (
        f"panels: round {n}: {presented} presented, {granted} granted, "
        f"{presented - granted} denied, {offline} offline; events uploaded so far "
        f"{report['events_uploaded']}, pending {report['events_pending']}"
    )


def parse_go(line: str) -> timedelta:
    """How far from now the readers' time is, by the go line: ``go`` (zero) or ``go WHEN``
    (WHEN minus now); ValueError for anything else or a WHEN without its offset."""
    word, _, when = line.strip().partition(" ")
    if word != "go":
        raise ValueError(f"expected 'go' or 'go WHEN', got {line.strip()!r}")
    if not when:
        return timedelta(0)
    start = datetime.fromisoformat(when.strip())
    if start.tzinfo is None:
        raise ValueError(f"{when.strip()!r} has no UTC offset")
    return start - datetime.now(UTC)


async def _wait_for_go() -> str:
    """A line on stdin (a pipe from the caller); "" on EOF. Not a thread's blocking
    readline, which would keep the process alive after a SIGTERM."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return (await reader.readline()).decode()


async def main(args: argparse.Namespace) -> int:
    holders = json.loads(args.holders.read_text())
    pki, cards = issue_or_load(args.dir, holders, args.pki_port)
    anchors = args.dir / "anchors"
    anchors.mkdir(exist_ok=True)
    for name, issued in (("root.pem", pki.root), ("ca.pem", pki.ca)):
        (anchors / name).write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    _write_private(args.dir / PUBLIC_FILE, json.dumps(public_summary(cards), indent=1))
    port = int(pki.base_url.rsplit(":", 1)[1])
    async with PkiServer(pki, port) as server:
        ready = {
            "ready": True,
            "pki": server.url,
            "anchors": [str(anchors / "root.pem")],
            "intermediates": [str(anchors / "ca.pem")],
            "cards": str(args.dir / PUBLIC_FILE),
        }
        print(json.dumps(ready), flush=True)
        go = await _wait_for_go()
        if not go:
            return 0
        offset = parse_go(go)
        config = FleetConfig(
            host=args.host,
            port=args.port,
            site=args.site,
            count=1,
            state_dir=args.state_dir or args.dir / "panels",
            passwords=json.loads(args.passwords.read_text()),
            layout=read_layout(args.layout),
            protocol=args.protocol,
            time_offset=offset,
        )
        panels = await start_fleet(config)
        try:
            scenario = {
                "name": "demo round",
                "settle": 2,
                "steps": [{"at": 0, "rush": {"cards": "all", "over": args.round_seconds}}],
            }
            n = 0
            while not args.rounds or n < args.rounds:
                n += 1
                report = await Runner(panels, list(cards.values()), seed=n).run(scenario)
                print(_round_line(n, report), file=sys.stderr, flush=True)
        finally:
            await stop_fleet(panels)
    return 0


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def until_stopped() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            return await main(args)
        return 0

    try:
        return asyncio.run(until_stopped())
    except (ValueError, KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(run())
