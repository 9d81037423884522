"""Who may call what: every route of the API against a table written from the roles' intent.

The expected table below is derived from what each role is for, not from
`accessd.auth.permissions`, so a wrong grant in the code shows up here as a mismatch.
Every operation in the OpenAPI schema must appear in it: a new route that nobody classified
(and so perhaps forgot to protect) fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.api.app import create_app
from accessd.auth import tokens
from accessd.config import Settings
from accessd.db.base import utcnow
from accessd.events import EventBus
from accessd.models import Operator
from tests.conftest import Operators
from tests.helpers import make_person, ok, problem

Route = tuple[str, str]  # (METHOD, path template as in the OpenAPI schema)


def _actions(*names: str) -> frozenset[Route]:
    return frozenset(("POST", f"/v1/credentials/{{credential_id}}/{n}") for n in names)


SITES = ("facilities", "areas", "panels", "doors", "readers")

PUBLIC: frozenset[Route] = frozenset(
    {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v1/auth/token")}
)
#: Every authenticated operator, whatever their roles.
SELF: frozenset[Route] = frozenset({("GET", "/v1/auth/me"), ("POST", "/v1/auth/logout")})

PEOPLE_READ = frozenset({("GET", "/v1/people"), ("GET", "/v1/people/{person_id}")})
PEOPLE_CREATE = frozenset({("POST", "/v1/people")})
PEOPLE_UPDATE = frozenset({("PATCH", "/v1/people/{person_id}")})
SECURITY_READ = frozenset(
    {("GET", "/v1/people/{person_id}/security"), ("GET", "/v1/people/{person_id}/alerts")}
)
SECURITY_WRITE = frozenset({("PATCH", "/v1/people/{person_id}/security")})
ALERTS_WRITE = frozenset(
    {("POST", "/v1/people/{person_id}/alerts"), ("POST", "/v1/alerts/{alert_id}/resolve")}
)
CREDENTIALS_READ = frozenset(
    {
        ("GET", "/v1/credentials"),
        ("GET", "/v1/credentials/{credential_id}"),
        ("GET", "/v1/credentials/{credential_id}/history"),
    }
)
SPONSOR = frozenset({("POST", "/v1/credentials")})
BIND_IDENTIFIERS = frozenset({("PATCH", "/v1/credentials/{credential_id}")})
#: "Report" covers every way a card leaves its holder's hands: lost, stolen, damaged.
REPORT = _actions("report_lost", "report_stolen", "report_damaged")
FACILITIES_READ = frozenset(
    r for s in SITES for r in (("GET", f"/v1/{s}"), ("GET", f"/v1/{s}/{{item_id}}"))
)
FACILITIES_WRITE = frozenset(
    r
    for s in SITES
    for r in (
        ("POST", f"/v1/{s}"),
        ("PATCH", f"/v1/{s}/{{item_id}}"),
        ("DELETE", f"/v1/{s}/{{item_id}}"),
    )
)
OPERATORS = frozenset(
    {
        ("GET", "/v1/operators"),
        ("POST", "/v1/operators"),
        ("GET", "/v1/operators/{operator_id}"),
        ("PATCH", "/v1/operators/{operator_id}"),
    }
)
AUDIT = frozenset({("GET", "/v1/audit"), ("GET", "/v1/audit/verify"), ("GET", "/metrics")})
#: Door readers and panels ask; those who watch the doors read what was decided.
#: Door readers ask for a challenge for the card, then for the decision with its answer.
DECIDE = frozenset({("POST", "/v1/decisions"), ("POST", "/v1/challenges")})
#: Remote door control through the panels.
DOOR_CONTROL = frozenset(
    {("POST", "/v1/doors/{door_id}/commands"), ("POST", "/v1/facilities/{facility_id}/lockdown")}
)
PANEL_STATUS = frozenset({("GET", "/v1/panel-status")})
PANEL_EVENTS = frozenset({("GET", "/v1/panel-events")})
#: The enrollment station: challenges (as reader 0) and binding a card read there.
ENROLL_CARD = frozenset({("POST", "/v1/challenges"), ("POST", "/v1/enrollments")})
DECISIONS_READ = frozenset({("GET", "/v1/decisions")})
#: What-if questions read the door policy; setting the threat level is the security office's.
WHAT_IF = frozenset(
    {("GET", "/v1/policy/doors/{door_id}/who"), ("GET", "/v1/policy/people/{person_id}/where")}
)
THREAT = frozenset({("PUT", "/v1/facilities/{facility_id}/threat-level")})
FORGIVE = frozenset({("POST", "/v1/policy/people/{person_id}/forgive")})
COMPLIANCE = frozenset({("GET", "/v1/policy/compliance")})
#: A preview of a policy change belongs with those who may change policy.
IMPACT = frozenset({("POST", "/v1/policy/impact")})
#: Schedules, holiday calendars, groups and access levels: door policy, the facility
#: manager's to write and everyone's who reads facilities to read.
POLICY_READ = frozenset(
    {
        ("GET", "/v1/schedules"),
        ("GET", "/v1/schedules/{item_id}"),
        ("GET", "/v1/holiday-calendars"),
        ("GET", "/v1/holiday-calendars/{item_id}"),
        ("GET", "/v1/groups"),
        ("GET", "/v1/groups/{item_id}"),
        ("GET", "/v1/groups/{item_id}/members"),
        ("GET", "/v1/access-levels"),
        ("GET", "/v1/access-levels/{item_id}"),
        ("GET", "/v1/access-levels/{item_id}/grants"),
    }
)
POLICY_WRITE = frozenset(
    {
        ("POST", "/v1/schedules"),
        ("PATCH", "/v1/schedules/{item_id}"),
        ("DELETE", "/v1/schedules/{item_id}"),
        ("POST", "/v1/holiday-calendars"),
        ("PUT", "/v1/holiday-calendars/{item_id}/days"),
        ("DELETE", "/v1/holiday-calendars/{item_id}"),
        ("POST", "/v1/groups"),
        ("PATCH", "/v1/groups/{item_id}"),
        ("DELETE", "/v1/groups/{item_id}"),
        ("PUT", "/v1/groups/{item_id}/members/{person_id}"),
        ("DELETE", "/v1/groups/{item_id}/members/{person_id}"),
        ("POST", "/v1/access-levels"),
        ("PATCH", "/v1/access-levels/{item_id}"),
        ("DELETE", "/v1/access-levels/{item_id}"),
        ("POST", "/v1/access-levels/{item_id}/grants"),
        ("DELETE", "/v1/access-levels/{item_id}/grants/{grant_id}"),
    }
)
#: Program read-ins: security staff read them, the security officer (an SSO) grants them.
PROGRAMS_READ = frozenset({("GET", "/v1/people/{person_id}/programs")})
PROGRAMS_WRITE = frozenset(
    {
        ("POST", "/v1/people/{person_id}/programs"),
        ("DELETE", "/v1/people/{person_id}/programs/{program}"),
    }
)

#: Interpretation: every staff role reads people and credentials, since each acts on them
#: (a registrar or issuer needs a credential's ETag before binding identifiers to it).
STAFF_READ = PEOPLE_READ | CREDENTIALS_READ

EVERY_PROTECTED = (
    SELF
    | STAFF_READ
    | PEOPLE_CREATE
    | PEOPLE_UPDATE
    | SECURITY_READ
    | SECURITY_WRITE
    | ALERTS_WRITE
    | SPONSOR
    | BIND_IDENTIFIERS
    | ENROLL_CARD
    | DOOR_CONTROL
    | PANEL_STATUS
    | PANEL_EVENTS
    | _actions(
        "enroll",
        "adjudicate",
        "issue",
        "activate",
        "suspend",
        "reinstate",
        "terminate",
        "destroy",
    )
    | REPORT
    | FACILITIES_READ
    | FACILITIES_WRITE
    | OPERATORS
    | AUDIT
    | DECIDE
    | DECISIONS_READ
    | WHAT_IF
    | THREAT
    | FORGIVE
    | COMPLIANCE
    | IMPACT
    | PROGRAMS_READ
    | PROGRAMS_WRITE
    | POLICY_READ
    | POLICY_WRITE
)

#: role -> the routes it may call (besides SELF). "" is an operator with no role at all.
INTENT: dict[str, frozenset[Route]] = {
    "sponsor": STAFF_READ | PEOPLE_CREATE | SPONSOR,
    "registrar": (
        STAFF_READ
        | PEOPLE_CREATE
        | PEOPLE_UPDATE
        | BIND_IDENTIFIERS
        | _actions("enroll", "activate")
        | REPORT
        | ENROLL_CARD
    ),
    "adjudicator": (
        STAFF_READ
        | SECURITY_READ
        | PROGRAMS_READ
        | SECURITY_WRITE
        | ALERTS_WRITE
        | _actions("adjudicate")
    ),
    "issuer": STAFF_READ | BIND_IDENTIFIERS | _actions("issue", "activate", "destroy") | REPORT,
    "security_officer": (
        STAFF_READ
        | SECURITY_READ
        | ALERTS_WRITE
        | _actions("suspend", "reinstate", "terminate", "destroy")
        | REPORT
        | FACILITIES_READ
        | POLICY_READ
        | COMPLIANCE
        | DECISIONS_READ
        | WHAT_IF
        | THREAT
        | FORGIVE
        | PROGRAMS_READ
        | PROGRAMS_WRITE
        | DOOR_CONTROL
        | PANEL_STATUS
        | PANEL_EVENTS
    ),
    "facility_manager": (
        STAFF_READ
        | FACILITIES_READ
        | FACILITIES_WRITE
        | POLICY_READ
        | POLICY_WRITE
        | COMPLIANCE
        | IMPACT
        | DECISIONS_READ
        | WHAT_IF
        | PANEL_STATUS
        | PANEL_EVENTS
    ),
    # "Everything" read, but operator accounts stay with the admin (see the report).
    "auditor": (
        STAFF_READ
        | SECURITY_READ
        | PROGRAMS_READ
        | FACILITIES_READ
        | POLICY_READ
        | COMPLIANCE
        | AUDIT
        | DECISIONS_READ
        | WHAT_IF
        | PANEL_STATUS
        | PANEL_EVENTS
    ),
    # A device account: it asks for decisions and can do nothing else.
    "door_reader": DECIDE,
    "admin": EVERY_PROTECTED,
    "": frozenset(),
}

#: Cells where the code grants more than the intent; each has a strict xfail test below, so
#: fixing the code turns that test green-to-red and this entry must then be removed.
KNOWN_DEVIATIONS: frozenset[tuple[str, str, str]] = frozenset()

#: FastAPI's documentation routes, served outside the schema and without a token.
DOC_ROUTES = frozenset(
    {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/docs-assets/redoc.standalone.js",
    }
)

MISSING = 987_654  # an id no test row has: allowed calls answer 404, not a side effect


def schema_routes(app: FastAPI) -> set[Route]:
    return {
        (method.upper(), path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }


def _url(template: str) -> str:
    for name in ("person_id", "alert_id", "credential_id", "item_id", "operator_id"):
        template = template.replace(f"{{{name}}}", str(MISSING))
    return template


async def call(client: httpx.AsyncClient, route: Route, headers: dict[str, str]) -> httpx.Response:
    method, template = route
    # A body that is valid JSON but, for creations, incomplete: allowed callers get 422 and
    # change nothing, while authentication and authorization run before body validation.
    body = {"json": {}} if method in {"POST", "PATCH"} else {}
    return await client.request(method, _url(template), headers=headers, **body)


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine, bus: EventBus) -> FastAPI:
    return create_app(settings, engine=engine, bus=bus)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://accessd.test") as c:
        yield c


def test_expected_table_covers_exactly_the_schema() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
    routes = schema_routes(app)
    classified = PUBLIC | EVERY_PROTECTED
    assert routes - classified == set(), "routes nobody classified as public or protected"
    assert classified - routes == set(), "the table names routes the API does not have"
    assert not PUBLIC & EVERY_PROTECTED
    for role, allowed in INTENT.items():
        assert allowed <= EVERY_PROTECTED, role
    # Auditors write nothing; only the admin manages operators or reaches every route.
    assert all(method == "GET" for method, _ in INTENT["auditor"])
    assert [r for r, allowed in INTENT.items() if OPERATORS & allowed] == ["admin"]
    # Nothing besides the schema's operations and FastAPI's own documentation is mounted.
    extra = {
        getattr(r, "path", None)
        for r in app.routes
        if getattr(r, "path", None) is not None and not getattr(r, "include_in_schema", True)
    }
    assert extra == DOC_ROUTES


async def test_every_role_gets_403_exactly_where_the_intent_forbids(
    app: FastAPI, api: httpx.AsyncClient, ops: Operators
) -> None:
    routes = sorted(schema_routes(app) - PUBLIC)
    mismatches: list[str] = []
    for role, allowed in INTENT.items():
        _, headers = await ops.make(*([role] if role else []), name=f"m-{role or 'none'}")
        may = allowed | SELF
        # Logout revokes the token, so it goes last.
        ordered = sorted(routes, key=lambda r: r == ("POST", "/v1/auth/logout"))
        for route in ordered:
            if (role, *route) in KNOWN_DEVIATIONS:
                continue
            r = await call(api, route, headers)
            if route in may:
                if r.status_code in (401, 403) or r.status_code >= 500:
                    mismatches.append(f"{role or 'no role'} {route}: {r.status_code}, want allowed")
            elif r.status_code != 403:
                mismatches.append(f"{role or 'no role'} {route}: {r.status_code}, want 403")
            else:
                body = problem(r, 403, "forbidden")
                assert body["permission"], body
        # The logout above really revoked the token.
        problem(await api.get("/v1/auth/me", headers=headers), 401, "bad_token")
    assert not mismatches, "\n".join(mismatches)


async def _token(
    sessions: async_sessionmaker[AsyncSession], op_id: int, *, expired: bool = False
) -> dict[str, str]:
    async with sessions() as s:
        op = await s.get(Operator, op_id)
        assert op is not None
        token, row = await tokens.issue_token(s, op, 3600)
        if expired:
            row.expires_at = utcnow() - timedelta(seconds=1)
        await s.commit()
    return {"Authorization": f"Bearer {token}"}


async def test_every_protected_route_refuses_missing_and_bad_tokens(
    app: FastAPI,
    api: httpx.AsyncClient,
    ops: Operators,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    admin_id, admin = await ops.make("admin", name="root")
    disabled_id, disabled = await ops.make("admin", name="gone")
    async with sessions() as s:
        await s.execute(update(Operator).where(Operator.id == disabled_id).values(disabled=True))
        await s.commit()
    expired = await _token(sessions, admin_id, expired=True)
    revoked = await _token(sessions, admin_id)
    ok(await api.post("/v1/auth/logout", headers=revoked), 204)
    cases: dict[str, tuple[dict[str, str], str]] = {
        "no header": ({}, "no_token"),
        "other scheme": ({"Authorization": "Basic cm9vdDpwdw=="}, "no_token"),
        "not our token": ({"Authorization": "Bearer eyJhbGciOi.x.y"}, "bad_token"),
        "unknown token": ({"Authorization": "Bearer acd_" + "A" * 43}, "bad_token"),
        "expired": (expired, "token_expired"),
        "revoked": (revoked, "bad_token"),
        "disabled operator": (disabled, "operator_disabled"),
    }
    mismatches: list[str] = []
    for route in sorted(schema_routes(app) - PUBLIC):
        for label, (headers, code) in cases.items():
            r = await call(api, route, headers)
            body = r.json()
            if r.status_code != 401 or body.get("code") != code:
                mismatches.append(f"{route} {label}: {r.status_code} {body.get('code')}")
            elif r.headers.get("www-authenticate") != "Bearer":
                mismatches.append(f"{route} {label}: no WWW-Authenticate")
    assert not mismatches, "\n".join(mismatches)
    # The good token still works, so the 401s above came from the token, not the setup.
    assert ok(await api.get("/v1/auth/me", headers=admin))["username"] == "root"


async def test_public_routes_need_no_token(api: httpx.AsyncClient, ops: Operators) -> None:
    assert ok(await api.get("/healthz"))["status"] == "ok"
    # The metrics are not public unless settings.metrics_public says so.
    problem(await api.get("/metrics"), 401, "no_token")
    auditor = await ops.headers("auditor")
    assert "accessd_rejected_requests" in (await api.get("/metrics", headers=auditor)).text
    # Reaches the login logic (a wrong password), not an authentication wall.
    r = await api.post("/v1/auth/token", json={"username": "nobody", "password": "x"})
    problem(r, 401, "bad_credentials")


async def test_a_role_unknown_to_the_code_grants_nothing(
    api: httpx.AsyncClient, ops: Operators
) -> None:
    _, headers = await ops.make("superuser")
    problem(await api.get("/v1/people", headers=headers), 403, "forbidden")
    me = ok(await api.get("/v1/auth/me", headers=headers))
    assert me["permissions"] == []


async def test_forbidden_calls_are_counted_in_metrics(
    api: httpx.AsyncClient, ops: Operators
) -> None:
    headers = await ops.headers("auditor")
    for _ in range(3):
        problem(await api.post("/v1/people", json={}, headers=headers), 403, "forbidden")
    metrics = (await api.get("/metrics", headers=headers)).text
    assert 'accessd_rejected_requests_total{reason="forbidden"} 3.0' in metrics


async def test_a_refused_write_changes_nothing(api: httpx.AsyncClient, ops: Operators) -> None:
    """A 403 is decided before the handler runs: the person stays as it was."""
    person = await make_person(api, await ops.headers("registrar"))
    auditor = await ops.headers("auditor")
    r = await api.patch(
        f"/v1/people/{person['id']}",
        json={"family_name": "Changed"},
        headers={**auditor, "If-Match": '"1"'},
    )
    problem(r, 403, "forbidden")
    got = ok(await api.get(f"/v1/people/{person['id']}", headers=auditor))
    assert got["family_name"] == "Doe" and got["version"] == 1


async def test_sponsor_cannot_update_a_person(api: httpx.AsyncClient, ops: Operators) -> None:
    person = await make_person(api, await ops.headers("registrar"))
    sponsor = await ops.headers("sponsor")
    r = await api.patch(
        f"/v1/people/{person['id']}",
        json={"status": "separated"},
        headers={**sponsor, "If-Match": '"1"'},
    )
    problem(r, 403, "forbidden")
