"""The `accessd` command line: serve, migrate, manage operators, import, verify the audit."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from accessd import __version__
from accessd.cli_demo import add_demo_command
from accessd.cli_edge import add_edge_command
from accessd.cli_enroll import add_enroll_command
from accessd.cli_mqtt import add_mqtt_commands
from accessd.cli_policy import add_policy_commands
from accessd.cli_simulate import add_simulate_commands
from accessd.config import Settings, load_settings

T = TypeVar("T")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(args.config, **overrides)


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from accessd.api.app import create_app

    settings = serving(settings_from(args))
    host = args.host or settings.host
    port = args.port or settings.port
    _check_schema(settings)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, access_log=False)
    return 0


def serving(settings: Settings) -> Settings:
    """The settings of a process that is accessd and nothing else: what only such a process
    may do (freezing the long-lived heap) is on unless the configuration says otherwise."""
    if "gc_freeze" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"gc_freeze": True})


def _check_schema(settings: Settings) -> None:
    from accessd.db.engine import make_engine
    from accessd.db.migrate import current_revision, head_revision

    async def check() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current = _run(check)
    if current != head_revision():
        raise SystemExit(
            f"accessd: the database is at revision {current or 'none'}, the code needs "
            f"{head_revision()}: run `accessd db upgrade` first"
        )


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

    return _run(go)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise SystemExit("accessd: the passwords differ")
    return first


def cmd_operators(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.errors import AccessdError
    from accessd.models import Operator
    from accessd.services import operators
    from accessd.services.actors import Actor

    settings = settings_from(args)
    cli_actor = Actor(None, f"cli:{getpass.getuser()}", frozenset())
    password = _read_password(args) if args.op_command == "create" else ""

    async def go() -> int:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session:
                if args.op_command == "create":
                    op = await operators.create_operator(
                        session,
                        cli_actor,
                        username=args.username,
                        password=password,
                        roles=args.role,
                        display_name=args.display_name or "",
                        person_id=args.person_id,
                    )
                    await session.commit()
                    print(f"operator {op.username} (id {op.id}) with roles {', '.join(op.roles)}")
                elif args.op_command == "token":
                    found = await session.scalar(
                        select(Operator).where(Operator.username == args.username)
                    )
                    if found is None:
                        raise SystemExit(f"accessd: no operator {args.username!r}")
                    ttl = args.ttl or settings.token_ttl_seconds
                    token, _ = await operators.issue_token(session, found, ttl)
                    await session.commit()
                    print(token)
                else:
                    for op in await session.scalars(select(Operator).order_by(Operator.id)):
                        flag = " (disabled)" if op.disabled else ""
                        print(f"{op.id:>4}  {op.username:<24} {','.join(op.roles)}{flag}")
        except AccessdError as exc:
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        return 0

    return _run(go)


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

    return _run(go)


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.events import EventBus, session_info
    from accessd.services.actors import Actor
    from accessd.services.importer import ImportFailed, import_csv

    settings = settings_from(args)
    path: Path = args.file
    if not path.is_file():
        print(f"accessd: no such file: {path}", file=sys.stderr)
        return 2
    actor = Actor(None, f"cli:{getpass.getuser()}", frozenset())
    bars: dict[str, tqdm[Any]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            label = "checking rows" if phase == "check" else "writing"
            bar = bars[phase] = tqdm(
                total=total or None,
                desc=label,
                unit=" rows",
                file=sys.stderr,
                disable=args.quiet,
                leave=True,
            )
        bar.update(done - bar.n)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        sessions.configure(info=session_info(EventBus()))
        try:
            with path.open(newline="", encoding="utf-8-sig") as stream:
                async with sessions() as session:
                    result = await import_csv(
                        session, actor, stream, source=path.name, progress=progress
                    )
                    await session.commit()
        except ImportFailed as exc:
            for bar in bars.values():
                bar.close()
            for err in exc.errors:
                print(f"{path}:{err.line}: {err.message}", file=sys.stderr)
            if exc.total > len(exc.errors):
                print(f"… and {exc.total - len(exc.errors)} more", file=sys.stderr)
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        except UnicodeDecodeError as exc:
            print(f"accessd: {path} is not UTF-8 text ({exc.reason})", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        for bar in bars.values():
            bar.close()
        print(
            f"imported {result.people} people and {result.credentials} credentials "
            f"from {result.rows} rows"
        )
        return 0

    return _run(go)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accessd",
        description="Physical-access control and PIV credential management service.",
    )
    parser.add_argument("--version", action="version", version=f"accessd {__version__}")
    parser.add_argument("--config", type=Path, help="TOML configuration file (or ACCESSD_CONFIG)")
    parser.add_argument("--database-url", help="overrides ACCESSD_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", help="bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from settings: 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("db", help="database schema migrations")
    dbs = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbs.add_parser("upgrade", help="migrate to the newest schema (or --revision)")
    up.add_argument("--revision", default="head")
    down = dbs.add_parser("downgrade", help="migrate back to a revision")
    down.add_argument("revision")
    dbs.add_parser("current", help="show the schema revision")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("operators", help="operator accounts")
    ops = p.add_subparsers(dest="op_command", required=True, metavar="ACTION")
    c = ops.add_parser("create", help="create an operator (asks for the password)")
    c.add_argument("--username", required=True)
    c.add_argument(
        "--role",
        action="append",
        required=True,
        help="sponsor, registrar, adjudicator, issuer, security_officer, "
        "facility_manager, auditor or admin; repeat for several",
    )
    c.add_argument("--display-name")
    c.add_argument("--person-id", type=int, help="the operator's own person record")
    c.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    t = ops.add_parser("token", help="print a new bearer token for an operator")
    t.add_argument("username")
    t.add_argument("--ttl", type=int, help="lifetime in seconds")
    ops.add_parser("list", help="list operators")
    p.set_defaults(func=cmd_operators)

    p = sub.add_parser("audit", help="the audit trail")
    aus = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    aus.add_parser("verify", help="check the hash chain; name the first broken entry")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("import", help="bulk-import people and credentials from CSV")
    p.add_argument("file", type=Path)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)

    add_demo_command(sub)

    add_policy_commands(sub)
    add_enroll_command(sub)
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
