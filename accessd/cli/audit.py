"""`accessd audit verify`: check the audit trail's hash chain (and its signed checkpoints,
when configured) and name the first break; `accessd audit checkpoint`: sign one now."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from accessd.cli.common import run, settings_from


def cmd_audit(args: argparse.Namespace) -> int:
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.services import audit, audit_checkpoints

    settings = settings_from(args)
    path, key = settings.audit_checkpoint_file, settings.checkpoint_key()

    async def go() -> int:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                if args.audit_command == "checkpoint":
                    if path is None or key is None:
                        print(
                            "accessd: set audit_checkpoint_file and audit_checkpoint_key first",
                            file=sys.stderr,
                        )
                        return 2
                    point = await audit_checkpoints.write(session, path, key)
                    print(
                        f"checkpoint: entry {point.seq} {point.hash} -> {path}"
                        if point is not None
                        else "no new entry since the last checkpoint"
                    )
                    return 0
                result = await audit.verify(session)
                checked = (
                    await audit_checkpoints.verify(session, path, key)
                    if path is not None and key is not None
                    else None
                )
        finally:
            await engine.dispose()
        status = 0
        if result.ok:
            print(f"audit chain intact: {result.entries} entries")
        else:
            print(
                f"audit chain BROKEN at entry {result.first_broken_seq}: {result.problem} "
                f"({result.entries} entries verified before it)",
                file=sys.stderr,
            )
            status = 1
        if checked is not None:
            for problem in checked.problems:
                print(f"audit checkpoint: {problem}", file=sys.stderr)
            if checked.ok:
                print(f"audit checkpoints hold: {checked.checked} checked against {path}")
            else:
                status = 1
        return status

    return run(go)


def add_audit_command(sub: Any) -> None:
    """Adds `audit` to the `accessd` parser."""
    p = sub.add_parser("audit", help="the audit trail")
    aus = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    aus.add_parser(
        "verify", help="check the hash chain and its signed checkpoints; name the first break"
    )
    aus.add_parser("checkpoint", help="sign the trail's head to the checkpoint file now")
    p.set_defaults(func=cmd_audit)
