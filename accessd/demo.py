"""`accessd demo`: a local database with a sample site, people and credentials, then serve.

Every sample record goes through the same use cases as the API (so the audit chain, the
lifecycle and separation of duties hold for the demo data too).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.models import Area, Door, Facility, Operator, Panel, Person, Reader
from accessd.models.enums import Role
from accessd.services import credentials, facilities, operators, people
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
]

_PEOPLE = [
    ("E1001", "Avery", "Nakamura", "employee", "Office of Security", "tier5", "ts_sci"),
    ("E1002", "Blake", "Okafor", "employee", "Facilities Division", "tier3", "secret"),
    ("E1003", "Casey", "Lindqvist", "employee", "Office of the Director", "tier5", "ts_sci"),
    ("C2001", "Devon", "Alvarez", "contractor", "Acme Systems", "tier2", "none"),
    ("C2002", "Emery", "Sato", "contractor", "Acme Systems", "tier3", "secret"),
    ("L3001", "Finley", "Brooks", "law_enforcement", "Protective Service", "tier4", "top_secret"),
    ("V4001", "Gray", "Moreau", "visitor", "Visiting delegation", "none", "none"),
]


async def _site(session: AsyncSession, fm: Actor) -> None:
    def fields(**kw: object) -> dict[str, object]:
        return kw

    hq = await facilities.create(
        session,
        fm,
        Facility,
        fields(
            code="HQ",
            name="Headquarters",
            timezone="America/New_York",
            security_level=4,
            address="1 Example Plaza, Washington, DC",
        ),
    )
    field = await facilities.create(
        session,
        fm,
        Facility,
        fields(code="DEN", name="Denver Field Office", timezone="America/Denver", security_level=2),
    )
    for fac, prefix in ((hq, "hq"), (field, "den")):
        panel = await facilities.create(
            session,
            fm,
            Panel,
            fields(facility_id=fac.id, name=f"{prefix}-panel-1", transport="mqtt"),
        )
        lobby = await facilities.create(
            session, fm, Area, fields(facility_id=fac.id, name="Lobby", area_class="controlled")
        )
        offices = await facilities.create(
            session,
            fm,
            Area,
            fields(facility_id=fac.id, parent_id=lobby.id, name="Offices", area_class="limited"),
        )
        areas = [(lobby, None, "Main entrance"), (offices, lobby, "Office corridor")]
        if fac is hq:
            scif = await facilities.create(
                session,
                fm,
                Area,
                fields(
                    facility_id=fac.id,
                    parent_id=offices.id,
                    name="SCIF",
                    area_class="exclusion",
                    is_scif=True,
                ),
            )
            areas.append((scif, offices, "SCIF vestibule"))
        for area, outside, name in areas:
            door = await facilities.create(
                session,
                fm,
                Door,
                fields(
                    area_id=area.id,
                    from_area_id=outside.id if outside else None,
                    panel_id=panel.id,
                    name=name,
                ),
            )
            strong = area.area_class != "controlled"
            await facilities.create(
                session,
                fm,
                Reader,
                fields(
                    door_id=door.id,
                    panel_id=panel.id,
                    name=f"{name} in",
                    direction="in",
                    contact=strong,
                    contactless=True,
                    pin_pad=strong,
                    biometric=area.area_class == "exclusion",
                ),
            )


async def _people(session: AsyncSession, actors: dict[Role, Actor]) -> None:
    today = date.today()
    for ext, given, family, affil, org, tier, elig in _PEOPLE:
        person = await people.create_person(
            session,
            actors[Role.SPONSOR],
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
        kind = {
            "visitor": CredentialKind.TEMPORARY,
            "law_enforcement": CredentialKind.LAW_ENFORCEMENT,
            "contractor": CredentialKind.PIV,
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
            identifiers={"badge_number": f"B-{ext}"},
        )
        steps = [(Action.ISSUE, Role.ISSUER), (Action.ACTIVATE, Role.ISSUER)]
        if kind is not CredentialKind.TEMPORARY:
            steps = [(Action.ENROLL, Role.REGISTRAR), (Action.ADJUDICATE, Role.ADJUDICATOR), *steps]
        for action, role in steps:
            await credentials.transition(
                session, actors[role], cred.id, action, reason="demo onboarding"
            )
    # One person under a continuous-vetting alert: their card is suspended at once.
    emery = await session.scalar(select(Person).where(Person.external_id == "C2002"))
    assert emery is not None
    await people.raise_alert(
        session,
        actors[Role.SECURITY_OFFICER],
        emery.id,
        source="CV feed",
        category="financial",
        description="demo alert",
        suspends_eligibility=True,
    )


async def seed(settings: Settings) -> dict[str, tuple[str, str | None]]:
    """Migrates, adds sample data once, and returns {role: (username, password or None)}."""
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
                await _site(session, actors[Role.FACILITY_MANAGER])
                await _people(session, actors)
            await session.commit()
    finally:
        await engine.dispose()
    return accounts


async def _tokens(settings: Settings, usernames: list[str]) -> dict[str, str]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = {}
            for name in usernames:
                op = await session.scalar(select(Operator).where(Operator.username == name))
                assert op is not None
                out[name], _ = await operators.issue_token(session, op, 8 * 3600)
            await session.commit()
            return out
    finally:
        await engine.dispose()


def run_demo(settings: Settings, *, host: str, port: int) -> int:
    import uvicorn

    from accessd.api.app import create_app

    accounts = asyncio.run(seed(settings))
    tokens = asyncio.run(_tokens(settings, [u for u, _ in accounts.values()]))
    base = f"http://{host}:{port}"
    print(f"\naccessd demo on {settings.database_url}\n")
    print(f"  API docs     {base}/docs")
    print(f"  health       {base}/healthz")
    print(f"  OpenAPI      {base}/openapi.json\n")
    print("  operator                   password          bearer token (8 h)")
    for username, password in accounts.values():
        print(f"  {username:<26} {password or '(set earlier)':<17} {tokens[username]}")
    admin = tokens[accounts[Role.ADMIN.value][0]]
    print("\n  try:")
    print(f"    curl -s -H 'Authorization: Bearer {admin}' {base}/v1/people")
    print(f"    curl -s -H 'Authorization: Bearer {admin}' {base}/v1/credentials?state=suspended")
    print(f"    curl -s -H 'Authorization: Bearer {admin}' {base}/v1/audit/verify\n")
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    return 0
