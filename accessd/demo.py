"""`accessd demo`: a local database with the example sites, people and credentials, then
serve.

Every sample record goes through the same use cases as the API and the CLI (so the audit
chain, the lifecycle and separation of duties hold for the demo data too), and the door
policy is the two example policy files, applied as version 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.models import Operator, Person, Reader
from accessd.models.enums import Role
from accessd.policyfile import combine, versions
from accessd.services import credentials, operators, people, programs
from accessd.services.actors import Actor
from policies.lifecycle import Action, CredentialKind

DEMO_ROLES = [
    Role.ADMIN,
    Role.SPONSOR,
    Role.REGISTRAR,
    Role.ADJUDICATOR,
    Role.ISSUER,
    Role.SECURITY_OFFICER,
    Role.FACILITY_MANAGER,
    Role.AUDITOR,
    Role.DOOR_READER,
]

#: (external id, given, family, affiliation, organization, tier, eligibility, programs):
#: the people the example policy files name.
_PEOPLE = [
    ("E1001", "Avery", "Nakamura", "employee", "Office of Security", "tier5", "ts_sci", ()),
    ("E1002", "Blake", "Okafor", "employee", "Facilities Division", "tier3", "secret", ()),
    ("E1003", "Casey", "Lindqvist", "employee", "Analysis", "tier5", "ts_sci", ("ALPHA",)),
    ("E1004", "Devon", "Alvarez", "contractor", "Acme Systems", "tier2", "none", ()),
    ("E2001", "Emery", "Sato", "employee", "Security Office", "tier5", "ts_sci", ("ALPHA",)),
    (
        "E2002",
        "Finley",
        "Brooks",
        "law_enforcement",
        "Protective Service",
        "tier4",
        "top_secret",
        (),
    ),
    ("E3001", "Harper", "Quinn", "employee", "Analysis", "tier5", "ts_sci", ("ALPHA",)),
    ("E5001", "Jordan", "Reyes", "employee", "Denver Field Office", "tier3", "secret", ()),
    ("E5002", "Kai", "Whitfield", "employee", "Denver Evidence Unit", "tier4", "top_secret", ()),
    (
        "E5003",
        "Logan",
        "Ferreira",
        "law_enforcement",
        "Denver Evidence Unit",
        "tier4",
        "top_secret",
        (),
    ),
    ("V4001", "Gray", "Moreau", "visitor", "Visiting delegation", "none", "none", ()),
]
EXAMPLES = Path(__file__).resolve().parent.parent / "policies" / "examples"
POLICY_FILES = [EXAMPLES / "hq.yaml", EXAMPLES / "field-office.yaml"]


def card_uuid(external_id: str) -> str:
    """A stable card UUID per demo person, so the printed examples keep working."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"accessd-demo:{external_id}"))


async def _people(session: AsyncSession, actors: dict[Role, Actor]) -> None:
    today = date.today()
    for ext, given, family, affil, org, tier, elig, read_ins in _PEOPLE:
        person = await people.create_person(
            session,
            actors[Role.REGISTRAR],
            {
                "external_id": ext,
                "given_name": given,
                "family_name": family,
                "email": f"{given.lower()}.{family.lower()}@example.gov",
                "affiliation": affil,
                "organization": org,
            },
        )
        if affil != "visitor":
            await people.update_security(
                session,
                actors[Role.ADJUDICATOR],
                person.id,
                {
                    "investigation_tier": tier,
                    "adjudication": "favorable",
                    "eligibility": elig,
                    "reinvestigation_due": today + timedelta(days=5 * 365),
                    "cv_enrolled": True,
                },
                expected_version=1,
            )
        for program in read_ins:
            await programs.read_in(
                session, actors[Role.SECURITY_OFFICER], person.id, program, "demo briefing"
            )
        kind = {
            "visitor": CredentialKind.TEMPORARY,
            "law_enforcement": CredentialKind.LAW_ENFORCEMENT,
        }.get(affil, CredentialKind.PIV)
        days = 14 if kind is CredentialKind.TEMPORARY else 5 * 365
        cred = await credentials.sponsor(
            session,
            actors[Role.SPONSOR],
            person_id=person.id,
            kind=kind,
            valid_from=today,
            valid_until=today + timedelta(days=days),
            reason="demo onboarding",
            identifiers={"badge_number": f"B-{ext}", "card_uuid": card_uuid(ext)},
        )
        steps = [(Action.ISSUE, Role.ISSUER), (Action.ACTIVATE, Role.ISSUER)]
        if kind is not CredentialKind.TEMPORARY:
            steps = [(Action.ENROLL, Role.REGISTRAR), (Action.ADJUDICATE, Role.ADJUDICATOR), *steps]
        for action, role in steps:
            await credentials.transition(
                session, actors[role], cred.id, action, reason="demo onboarding"
            )
    # One contractor under a continuous-vetting alert: the card is suspended at once.
    devon = await session.scalar(select(Person).where(Person.external_id == "E1004"))
    assert devon is not None
    await people.raise_alert(
        session,
        actors[Role.SECURITY_OFFICER],
        devon.id,
        source="CV feed",
        category="financial",
        description="demo alert",
        suspends_eligibility=True,
    )


async def _policy(session: AsyncSession, actor: Actor) -> None:
    policy = combine.read_all(POLICY_FILES)
    if policy.errors:
        raise RuntimeError(
            "the example policy files do not check: " + "; ".join(str(f) for f in policy.errors)
        )
    await versions.apply(session, actor.label, policy, comment="demo: the example sites")


async def seed(settings: Settings) -> dict[str, tuple[str, str | None]]:
    """Migrates, adds the sample data once, and returns {role: (username, password or
    None when it was set on an earlier run)}."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    accounts: dict[str, tuple[str, str | None]] = {}
    try:
        await upgrade(engine)
        async with sessions() as session:
            fresh = not await session.scalar(select(func.count()).select_from(Operator))
            system = Actor(None, "demo-seed", frozenset())
            actors: dict[Role, Actor] = {}
            for role in DEMO_ROLES:
                username = f"demo-{role.value.replace('_', '-')}"
                op = await session.scalar(select(Operator).where(Operator.username == username))
                password = None
                if op is None:
                    password = secrets.token_urlsafe(12)
                    op = await operators.create_operator(
                        session,
                        system,
                        username=username,
                        password=password,
                        roles=[role],
                        display_name=f"Demo {role.value.replace('_', ' ')}",
                    )
                accounts[role.value] = (username, password)
                actors[role] = operators.actor_of(op)
            if fresh:
                await _people(session, actors)
                await _policy(session, actors[Role.FACILITY_MANAGER])
            await session.commit()
    finally:
        await engine.dispose()
    return accounts


async def _tokens(settings: Settings, usernames: list[str]) -> tuple[dict[str, str], int]:
    """Fresh tokens for the demo operators, and the id of the HQ main entrance reader."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = {}
            for name in usernames:
                op = await session.scalar(select(Operator).where(Operator.username == name))
                assert op is not None
                out[name], _ = await operators.issue_token(session, op, 8 * 3600)
            reader = await session.scalar(select(Reader.id).where(Reader.name == "Corridor in"))
            await session.commit()
            return out, int(reader or 0)
    finally:
        await engine.dispose()


def run_demo(settings: Settings, *, host: str, port: int) -> int:
    import uvicorn

    from accessd.api.app import create_app

    accounts = asyncio.run(seed(settings))
    tokens, reader = asyncio.run(_tokens(settings, [u for u, _ in accounts.values()]))
    base = f"http://{host}:{port}"
    print(f"\naccessd demo on {settings.database_url}\n")
    print(f"  API docs     {base}/docs")
    print(f"  health       {base}/healthz")
    print(f"  OpenAPI      {base}/openapi.json")
    print(f"  policy       {', '.join(p.name for p in POLICY_FILES)} (version 1)\n")
    print("  operator                   password          bearer token (8 h)")
    for username, password in accounts.values():
        print(f"  {username:<26} {password or '(set earlier)':<17} {tokens[username]}")
    admin = tokens[accounts[Role.ADMIN.value][0]]
    door = tokens[accounts[Role.DOOR_READER.value][0]]
    auth = f"-H 'Authorization: Bearer {admin}'"
    ask = json.dumps(
        {
            "reader_id": reader,
            "evidence": ["pki_auth"],
            "credential": {"kind": "card_uuid", "value": card_uuid("E2001")},
        }
    )
    print("\n  try:")
    print(f"    curl -s {auth} {base}/v1/people")
    print(f"    curl -s {auth} '{base}/v1/credentials?state=suspended'")
    print(f"    curl -s {auth} {base}/v1/audit/verify")
    print(
        f"    curl -s -H 'Authorization: Bearer {door}' -H 'content-type: application/json' "
        f"{base}/v1/decisions -d '{ask}'"
    )
    print(f"    curl -s {auth} {base}/v1/decisions\n")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    return 0
