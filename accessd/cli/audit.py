"""`accessd audit verify`: check the audit trail's hash chain and name the first broken entry."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from accessd.cli.common import run, settings_from


def cmd_audit(args: argparse.Namespace) -> int:
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.services import audit

    settings = settings_from(args)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                result = await audit.verify(session)
        finally:
            await engine.dispose()
        if result.ok:
            print(f"audit chain intact: {result.entries} entries")
            return 0
        print(
            f"audit chain BROKEN at entry {result.first_broken_seq}: {result.problem} "
            f"({result.entries} entries verified before it)",
            file=sys.stderr,
        )
        return 1

    return run(go)


def add_audit_command(sub: Any) -> None:
    """Adds `audit` to the `accessd` parser."""
    p = sub.add_parser("audit", help="the audit trail")
    aus = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    aus.add_parser("verify", help="check the hash chain; name the first broken entry")
    p.set_defaults(func=cmd_audit)
