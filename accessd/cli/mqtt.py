"""`accessd mqtt acl`: broker logins and the ACL for the MQTT panels in the database.

It writes, into ``--out``, the file of Mosquitto's dynamic-security plugin
(``dynamic-security.json``: logins, the client id each panel is bound to, topic rules) and
``credentials.json`` (every panel's and the service's password, mode 0600, to provision
them from). Passwords of the previous run are kept unless ``--rotate``. The broker's
``plugin_opt_config_file`` points at the first (deploy/mosquitto/accessd.conf expects
/etc/mosquitto/accessd/); the plugin reads it only at start, so restart the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import sys
from pathlib import Path
from typing import Any


def add_mqtt_commands(sub: Any) -> None:
    """Adds `mqtt acl` to the `accessd` parser."""
    p = sub.add_parser("mqtt", help="MQTT broker logins and ACL for the panels")
    acts = p.add_subparsers(dest="mqtt_command", required=True, metavar="ACTION")
    a = acts.add_parser(
        "acl", help="write the broker's logins and rules, and the panels' credentials"
    )
    a.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write")
    a.add_argument(
        "--service-user", default="accessd", help="the service's broker user (default accessd)"
    )
    a.add_argument(
        "--rotate", action="store_true", help="new passwords for everyone, the service too"
    )
    a.add_argument(
        "--group",
        help="group that may read the broker's file (e.g. mosquitto): mode 0640",
    )
    a.set_defaults(func=cmd_acl)


def cmd_acl(args: argparse.Namespace) -> int:
    from accessd.cli.common import settings_from
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.gateway.acl import AclError, mqtt_panels, write_broker_files

    gid = None
    if args.group:
        try:
            gid = grp.getgrnam(args.group).gr_gid
        except KeyError:
            print(f"accessd: no group {args.group!r}", file=sys.stderr)
            return 2
    settings = settings_from(args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                panels = await mqtt_panels(session)
        finally:
            await engine.dispose()
        result = write_broker_files(
            args.out, panels, service_user=args.service_user, rotate=args.rotate, group=gid
        )
        print(
            f"{result.panels} MQTT panels: {result.kept} passwords kept, {result.new} new, "
            f"{result.removed} users removed; wrote {', '.join(str(f) for f in result.files)}"
        )
        # Mosquitto 2.0 loads a plugin's file at start only: a SIGHUP would change nothing.
        print("restart the broker (systemctl restart mosquitto) for them to take effect")
        return 0

    try:
        return asyncio.run(go())
    except (AclError, ValueError, OSError) as exc:
        print(f"accessd: {exc}", file=sys.stderr)
        return 1
