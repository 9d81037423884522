"""The `accessd` command line: the parser, with one module of this package a command group,
and the entry point that runs the chosen command and turns its errors into exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from accessd import __version__
from accessd.cli.audit import add_audit_command
from accessd.cli.backup import add_backup_command
from accessd.cli.crl import add_crl_command
from accessd.cli.db import add_db_command
from accessd.cli.demo import add_demo_command
from accessd.cli.edge import add_edge_command
from accessd.cli.enroll import add_enroll_command
from accessd.cli.mqtt import add_mqtt_commands
from accessd.cli.operators import add_operators_command
from accessd.cli.people_import import add_import_command
from accessd.cli.policy import add_policy_commands
from accessd.cli.serve import add_serve_command
from accessd.cli.simulate import add_simulate_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accessd",
        description="Physical-access control and PIV credential management service.",
    )
    parser.add_argument("--version", action="version", version=f"accessd {__version__}")
    parser.add_argument("--config", type=Path, help="TOML configuration file (or ACCESSD_CONFIG)")
    parser.add_argument("--database-url", help="overrides ACCESSD_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_serve_command(sub)
    add_db_command(sub)
    add_operators_command(sub)
    add_audit_command(sub)
    add_backup_command(sub)
    add_import_command(sub)
    add_demo_command(sub)
    add_policy_commands(sub)
    add_enroll_command(sub)
    add_crl_command(sub)
    add_mqtt_commands(sub)
    add_edge_command(sub)
    add_simulate_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("ACCESSD_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except FileNotFoundError as exc:
        print(f"accessd: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"])
            print(f"accessd: configuration {where}: {err['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result
