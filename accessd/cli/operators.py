"""`accessd operators`: create operator accounts, bind door readers to their readers, list
them, print a bearer token."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from accessd.cli.common import cli_user, run, settings_from


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise SystemExit("accessd: the passwords differ")
    return first


def cmd_operators(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from accessd.auth.tokens import issue_token
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.errors import AccessdError
    from accessd.models import Operator
    from accessd.services import operators
    from accessd.services.actors import Actor

    settings = settings_from(args)
    cli_actor = Actor(None, cli_user(), frozenset())
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
                        readers=args.reader or (),
                    )
                    await session.commit()
                    print(f"operator {op.username} (id {op.id}) with roles {', '.join(op.roles)}")
                elif args.op_command == "bind":
                    found = await session.scalar(
                        select(Operator).where(Operator.username == args.username)
                    )
                    if found is None:
                        raise SystemExit(f"accessd: no operator {args.username!r}")
                    op = await operators.update_operator(
                        session, cli_actor, found.id, {"readers": args.reader or []}, found.version
                    )
                    await session.commit()
                    served = ", ".join(map(str, op.readers)) or "none"
                    print(f"operator {op.username} serves readers: {served}")
                elif args.op_command == "token":
                    found = await session.scalar(
                        select(Operator).where(Operator.username == args.username)
                    )
                    if found is None:
                        raise SystemExit(f"accessd: no operator {args.username!r}")
                    ttl = args.ttl or settings.token_ttl_seconds
                    token, _ = await issue_token(session, found, ttl)
                    await session.commit()
                    print(token)
                else:
                    for op in await session.scalars(select(Operator).order_by(Operator.id)):
                        flag = " (disabled)" if op.disabled else ""
                        if op.readers:
                            flag += f" readers {','.join(map(str, op.readers))}"
                        print(f"{op.id:>4}  {op.username:<24} {','.join(op.roles)}{flag}")
        except AccessdError as exc:
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        return 0

    return run(go)


def add_operators_command(sub: Any) -> None:
    """Adds `operators` to the `accessd` parser."""
    p = sub.add_parser("operators", help="operator accounts")
    ops = p.add_subparsers(dest="op_command", required=True, metavar="ACTION")
    c = ops.add_parser("create", help="create an operator (asks for the password)")
    c.add_argument("--username", required=True)
    c.add_argument(
        "--role",
        action="append",
        required=True,
        help="sponsor, registrar, adjudicator, issuer, security_officer, "
        "facility_manager, auditor, door_reader or admin; repeat for several",
    )
    c.add_argument(
        "--reader",
        type=int,
        action="append",
        help="a reader a door_reader account serves (by id); repeat for several",
    )
    c.add_argument("--display-name")
    c.add_argument("--person-id", type=int, help="the operator's own person record")
    c.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    b = ops.add_parser(
        "bind", help="set the readers a door_reader account serves (none: leave out --reader)"
    )
    b.add_argument("username")
    b.add_argument(
        "--reader", type=int, action="append", help="a reader it serves; repeat for several"
    )
    t = ops.add_parser("token", help="print a new bearer token for an operator")
    t.add_argument("username")
    t.add_argument("--ttl", type=int, help="lifetime in seconds")
    ops.add_parser("list", help="list operators")
    p.set_defaults(func=cmd_operators)
