"""`accessd edge`: run a soft panel that owns an OSDP bus and joins accessd over MQTT.

    accessd edge --serial /dev/ttyUSB0 --site hq --panel edge1 \\
        --mqtt-url mqtt://broker:1883 --credentials /etc/accessd/credentials.json \\
        --reader 1:101:1:0 --reader 2:102:1 --state-dir /var/lib/accessd-edge

``--reader ADDRESS:READER:DOOR[:OUTPUT]`` wires the OSDP reader at ``ADDRESS`` as
accessd's reader id ``READER`` at door ``DOOR``, the door's strike on its output
``OUTPUT``; ``--piv ADDRESS`` makes that reader authenticate PIV cards (PKI-CAK, or
PKI-AUTH with a PIN typed before the card) through transparent mode. The panel's broker
password comes from the ``credentials.json`` that
`accessd mqtt acl` writes (the entry of this site and panel), or from
``ACCESSD_EDGE_PASSWORD``. Runs until SIGINT or SIGTERM; exit status 2 for bad arguments,
3 when the serial port cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def add_edge_command(sub: Any) -> None:
    p = sub.add_parser("edge", help="run an OSDP soft panel joined to accessd over MQTT")
    p.add_argument("--serial", required=True, metavar="PORT", help="tty, pty or socket:// URL")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--site", required=True)
    p.add_argument("--panel", required=True)
    p.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    p.add_argument("--protocol", type=int, choices=(3, 5), default=5)
    p.add_argument("--credentials", type=Path, help="credentials.json from `accessd mqtt acl`")
    p.add_argument(
        "--reader",
        action="append",
        required=True,
        metavar="ADDRESS:READER:DOOR[:OUTPUT]",
        help="an OSDP reader: bus address, accessd reader id, door, strike output",
    )
    p.add_argument(
        "--piv",
        action="append",
        type=int,
        default=[],
        metavar="ADDRESS",
        help="the reader at ADDRESS passes APDUs to the card: PKI-CAK / PKI-AUTH there",
    )
    p.add_argument("--state-dir", type=Path, default=Path("."), help="where the event buffer lives")
    p.add_argument("--badge-format", default="{facility}:{number}")
    p.add_argument("--poll-interval", type=float, default=0.05)
    p.set_defaults(func=cmd_edge)


def parse_reader(text: str) -> tuple[int, int, int, int | None]:
    parts = text.split(":")
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts):
        raise ValueError(f"--reader {text!r}: want ADDRESS:READER:DOOR[:OUTPUT], numbers")
    address, reader, door = (int(p) for p in parts[:3])
    if not 0 <= address <= 0x7E:
        raise ValueError(f"--reader {text!r}: OSDP address out of 0..126")
    return address, reader, door, int(parts[3]) if len(parts) == 4 else None


def panel_password(credentials: Path | None, site: str, panel: str) -> str | None:
    if credentials is None:
        return os.environ.get("ACCESSD_EDGE_PASSWORD")
    doc = json.loads(credentials.read_text())
    for entry in doc.get("panels", []):
        if entry.get("site") == site and entry.get("panel") == panel:
            return str(entry["password"])
    raise ValueError(f"{credentials} has no login for panel {site}/{panel}")


def cmd_edge(args: argparse.Namespace) -> int:
    try:
        wiring = [parse_reader(r) for r in args.reader]
        password = panel_password(args.credentials, args.site, args.panel)
    except (ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from urllib.parse import urlsplit

    url = urlsplit(args.mqtt_url)
    if url.scheme != "mqtt" or not url.hostname:
        print("error: --mqtt-url must be mqtt://host:port", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, wiring, password, url.hostname, url.port or 1883))


async def _run(
    args: argparse.Namespace,
    wiring: list[tuple[int, int, int, int | None]],
    password: str | None,
    host: str,
    port: int,
) -> int:
    from drivers.edge.controller import EdgeController, ReaderWiring
    from drivers.osdp.bus import ControlPanel, PdConfig
    from drivers.osdp.transport import OsdpLineError, SerialLine
    from drivers.panel.buffer import EventBuffer
    from drivers.panel.doors import DoorConfig
    from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
    from drivers.panel.session import PanelConfig, PanelSession

    try:
        line = await SerialLine.open(args.serial, args.baud)
    except OsdpLineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    readers = [ReaderWiring(a, r, d, o, piv=a in args.piv) for a, r, d, o in wiring]
    doors: dict[int, list[int]] = {}
    for w in readers:
        doors.setdefault(w.door, []).append(w.reader)
    config = PanelConfig(
        site=args.site,
        panel=args.panel,
        doors=tuple(DoorConfig(door=d, readers=tuple(rs)) for d, rs in sorted(doors.items())),
        firmware="accessd-edge/1",
        protocol=5 if args.protocol == 5 else 3,
    )
    link = MqttPanelLink(
        panel_mqtt_config(
            args.site, args.panel, host=host, port=port, password=password, protocol=args.protocol
        )
    )
    args.state_dir.mkdir(parents=True, exist_ok=True)
    buffer = EventBuffer(args.state_dir / f"{args.site}.{args.panel}.db")
    session = PanelSession(config, link, buffer)
    cp = ControlPanel(
        line, [PdConfig(w.address) for w in readers], poll_interval=args.poll_interval
    )
    edge = EdgeController(cp, session, readers, badge_format=args.badge_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await edge.start()
    print(
        f"edge {args.site}/{args.panel}: {len(readers)} OSDP readers on {args.serial}, "
        f"broker {host}:{port}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await edge.close()
        buffer.close()
    return 0
