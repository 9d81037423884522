"""`accessd enroll`: the enrollment station on the machine the card reader is plugged into.

It reads the card in a PC/SC reader, validates it (CHUID signature, certificates with
revocation, possession of the 9E key, and of 9A with ``--pin``), shows who it is, and binds
it to the person's credential awaiting a card. The operator signs in with their password;
their account is recorded as the registrar.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import date
from typing import Any

#: Exit status for a card the station refused (distinct from usage and other errors).
REFUSED = 3


def add_enroll_command(sub: Any) -> None:
    p = sub.add_parser(
        "enroll",
        help="read a PIV card at a PC/SC reader, validate it and bind it to a person",
    )
    p.add_argument("--reader", required=True, help="PC/SC reader name (or a unique prefix)")
    p.add_argument("--person", type=int, help="the person the card is for (not with --inspect)")
    p.add_argument("--credential", type=int, help="the credential awaiting this card")
    p.add_argument("--operator", help="your operator username (password asked, or stdin)")
    p.add_argument(
        "--pin",
        action="store_true",
        help="the holder enters the PIN, so the PIV-authentication key is proven too",
    )
    p.add_argument(
        "--inspect", action="store_true", help="validate and show the card; write nothing"
    )
    p.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for a card to be put on the reader (default 30)",
    )
    p.add_argument(
        "--secrets-stdin",
        action="store_true",
        help="read the operator password (then the PIN) from standard input, a line each",
    )
    p.set_defaults(func=cmd_enroll)


def _secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit(f"accessd: standard input ended before the {prompt.lower()}")
        return line.rstrip("\r\n")
    return getpass.getpass(f"{prompt}: ")


async def _wait_for_card(reader: str, seconds: float) -> Any:
    """Connect to the card in ``reader``, waiting up to ``seconds`` for one to arrive."""
    from drivers.errors import NoCard
    from drivers.pcsc import PcscTransport

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    told = False
    while True:
        try:
            # Exclusive: nothing else may talk to the card between our APDUs.
            return await PcscTransport.connect(reader, exclusive=True)
        except NoCard:
            if loop.time() >= deadline:
                raise
            if not told:
                print(f"put the card on {reader!r}…", file=sys.stderr)
                told = True
            await asyncio.sleep(0.1)


def cmd_enroll(args: argparse.Namespace) -> int:
    from accessd.cli.common import settings_from

    if not args.inspect and (args.person is None or args.operator is None):
        print("accessd: enroll needs --person and --operator (or --inspect)", file=sys.stderr)
        return 2
    settings = settings_from(args)
    password = "" if args.inspect else _secret("Operator password", args.secrets_stdin)
    pin = _secret("Card PIN", args.secrets_stdin) if args.pin else None
    return asyncio.run(_enroll(args, settings, password, pin))


async def _enroll(args: argparse.Namespace, settings: Any, password: str, pin: str | None) -> int:
    from sqlalchemy import select

    from accessd.auth.passwords import verify_password
    from accessd.auth.permissions import Permission
    from accessd.authn.factory import build_card_authentication
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.enrollment.errors import CardRefused
    from accessd.enrollment.inspection import inspect
    from accessd.enrollment.reading import read_card
    from accessd.enrollment.registration import register, registered_to
    from accessd.errors import AccessdError
    from accessd.events import EventBus, session_info
    from accessd.models import Operator
    from accessd.services.actors import Actor
    from drivers.errors import AuthenticationBlocked, DriverError, WrongPin

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    sessions.configure(info=session_info(EventBus()))
    cards = build_card_authentication(settings, sessions)
    await cards.start()
    try:
        actor = None
        if not args.inspect:
            async with sessions() as session:
                op = await session.scalar(
                    select(Operator).where(Operator.username == args.operator)
                )
                if (
                    op is None
                    or op.disabled
                    or not await verify_password(op.password_hash, password)
                ):
                    print("accessd: unknown operator or wrong password", file=sys.stderr)
                    return 2
                actor = Actor(op.id, op.username, frozenset(op.roles), op.person_id)
            if Permission.CREDENTIALS_ENROLL not in actor.permissions:
                print(
                    f"accessd: {args.operator} may not enroll cards (needs the registrar role)",
                    file=sys.stderr,
                )
                return 2
        try:
            async with await _wait_for_card(args.reader, args.wait) as transport:
                reading = await read_card(transport, cards.authenticator.challenges, pin=pin)
        except WrongPin as exc:
            print(f"refused: wrong PIN, {exc.tries_left} tries left", file=sys.stderr)
            return REFUSED
        except AuthenticationBlocked:
            print("refused: the card's PIN is blocked", file=sys.stderr)
            return REFUSED
        except DriverError as exc:
            print(f"accessd: cannot read the card in {args.reader!r}: {exc}", file=sys.stderr)
            return 1
        try:
            identity = await inspect(
                reading,
                cards.authenticator,
                today=date.today(),
                require_security_object=settings.require_security_object,
            )
        except CardRefused as exc:
            print(f"refused: {exc.code}: {exc.detail}", file=sys.stderr)
            return REFUSED
        print("\n".join(identity.describe()))
        async with sessions() as session:
            bound = await registered_to(session, identity)
            if args.inspect:
                if bound is not None:
                    print(f"registered   credential {bound.id} of person {bound.person_id}")
                else:
                    print("registered   not yet")
                return 0
            assert actor is not None
            try:
                cred = await register(
                    session,
                    actor,
                    identity,
                    person_id=args.person,
                    credential_id=args.credential,
                )
                await session.commit()
            except AccessdError as exc:
                print(f"refused: {exc.code}: {exc.detail}", file=sys.stderr)
                return REFUSED
        print(
            f"enrolled     credential {cred.id} of person {cred.person_id}, now {cred.state}, "
            f"valid until {cred.valid_until.isoformat()}"
        )
        return 0
    finally:
        await cards.stop()
        await engine.dispose()
