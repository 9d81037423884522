"""`accessd db`: schema migrations (upgrade, downgrade, current)."""

from __future__ import annotations

import argparse
from typing import Any

from accessd.cli.common import run, settings_from


def cmd_db(args: argparse.Namespace) -> int:
    from accessd.db.engine import make_engine
    from accessd.db.migrate import current_revision, downgrade, head_revision, upgrade

    settings = settings_from(args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            if args.db_command == "upgrade":
                await upgrade(engine, args.revision)
                print(f"database at revision {await current_revision(engine)}")
            elif args.db_command == "downgrade":
                await downgrade(engine, args.revision)
                print(f"database at revision {await current_revision(engine) or 'base'}")
            else:
                cur = await current_revision(engine)
                state = "up to date" if cur == head_revision() else f"head is {head_revision()}"
                print(f"{cur or 'empty'} ({state})")
        finally:
            await engine.dispose()
        return 0

    return run(go)


def add_db_command(sub: Any) -> None:
    """Adds `db` to the `accessd` parser."""
    p = sub.add_parser("db", help="database schema migrations")
    dbs = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbs.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head")
    down = dbs.add_parser("downgrade", help="migrate back to a revision")
    down.add_argument("revision")
    dbs.add_parser("current", help="show the schema revision")
    p.set_defaults(func=cmd_db)
