"""Bad input gets a 4xx problem+json answer that says what is wrong, never a 500."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from tests.conftest import PASSWORD, Operators, _pg_admin, _pg_url
from tests.helpers import TODAY, make_person, ok, sponsor

Json = dict[str, Any]
PERSON = {"given_name": "Pat", "family_name": "Doe", "affiliation": "employee"}
FACILITY = {"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": 3}
#: Random examples per operation, besides schemathesis's boundary (coverage) cases.
FUZZ_EXAMPLES = 5


def is_problem(r: httpx.Response, *statuses: int) -> Json:
    """A 4xx problem (one of `statuses` when given) with the RFC 9457 members."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    if statuses:
        assert r.status_code in statuses, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: Json = r.json()
    assert body["status"] == r.status_code
    assert body["type"] == f"urn:accessd:problem:{body['code']}"
    assert body["title"] and body["detail"]
    return body


def rejected(metrics_text: str) -> dict[str, float]:
    pattern = r'^accessd_rejected_requests_total\{reason="([^"]+)"\} ([0-9.e+]+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, metrics_text, re.M)}


@pytest.fixture
async def admin(ops: Operators) -> dict[str, str]:
    return await ops.headers("admin")


@pytest.fixture
async def small(db_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own that reads at most 2 KiB of request body."""
    app = create_app(Settings(database_url=db_url, max_body_bytes=2048), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://accessd.test") as c:
        yield c


async def test_malformed_json_is_422_validation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await make_person(client, admin)
    headers = {**admin, "content-type": "application/json"}
    for method, url in (
        ("POST", "/v1/people"),
        ("PATCH", f"/v1/people/{person['id']}"),
        ("POST", "/v1/facilities"),
        ("POST", "/v1/auth/token"),
    ):
        for raw in (b"{", b'{"given_name": }', b"{'a': 1}", b'{"a": 1,}', b"nul"):
            r = await client.request(method, url, content=raw, headers=headers)
            body = is_problem(r, 422)
            assert body["code"] == "validation"
            assert body["errors"][0]["type"] == "json_invalid", body


async def test_non_json_bodies_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for raw, ctype in (
        (b"\xff\xfe\x00\x81", "application/json"),  # not UTF-8
        (b'{"given_name": "\xe9"}', "application/json"),  # Latin-1, not UTF-8
        (b"given_name=Pat", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
        (b"null", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"a string"', "application/json"),
    ):
        r = await client.post("/v1/people", content=raw, headers={**admin, "content-type": ctype})
        is_problem(r, 400, 422)


async def test_deeply_nested_or_huge_numbers_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = await client.post(
        "/v1/people", content=deep, headers={**admin, "content-type": "application/json"}
    )
    is_problem(r, 400, 422)
    digits = (
        b'{"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": 1' + b"0" * 5000 + b"}"
    )
    r = await client.post(
        "/v1/facilities", content=digits, headers={**admin, "content-type": "application/json"}
    )
    is_problem(r, 400, 422)
    for level in (1e308, 2**64, -(2**63)):
        r = await client.post(
            "/v1/facilities", json={**FACILITY, "security_level": level}, headers=admin
        )
        is_problem(r, 422)


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/people", {**PERSON, "given_name": 123}, "given_name"),
        ("/v1/people", {**PERSON, "given_name": ["Pat"]}, "given_name"),
        ("/v1/people", {**PERSON, "affiliation": 5}, "affiliation"),
        ("/v1/facilities", {**FACILITY, "security_level": "high"}, "security_level"),
        ("/v1/facilities", {**FACILITY, "name": {"en": "HQ"}}, "name"),
        ("/v1/areas", {"facility_id": "one", "name": "A", "area_class": "limited"}, "facility_id"),
        (
            "/v1/areas",
            {"facility_id": 1, "name": "A", "area_class": "limited", "is_scif": "maybe"},
            "is_scif",
        ),
        (
            "/v1/credentials",
            {"person_id": 1, "kind": "piv", "valid_from": "yesterday", "valid_until": "2030-01-01"},
            "valid_from",
        ),
        (
            "/v1/credentials",
            {
                "person_id": 1.5,
                "kind": "piv",
                "valid_from": "2030-01-01",
                "valid_until": "2030-01-02",
            },
            "person_id",
        ),
        ("/v1/operators", {"username": "bob", "password": PASSWORD, "roles": "admin"}, "roles"),
        (
            "/v1/people/1/alerts",
            {"source": "x", "category": "y", "suspends_eligibility": "sometimes"},
            "suspends_eligibility",
        ),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, body: Json, field: str
) -> None:
    await make_person(client, admin)
    r = await client.post(url, json=body, headers=admin)
    problem_body = is_problem(r, 422)
    assert problem_body["code"] == "validation"
    assert any(e["loc"][:2] == ["body", field] for e in problem_body["errors"]), problem_body


async def test_unknown_fields_are_refused_not_dropped(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await make_person(client, admin)
    cases: list[tuple[str, str, Json, dict[str, str]]] = [
        ("POST", "/v1/people", {**PERSON, "is_admin": True}, {}),
        (
            "PATCH",
            f"/v1/people/{person['id']}",
            {"status": "active", "version": 9},
            {"If-Match": '"1"'},
        ),
        (
            "PATCH",
            f"/v1/people/{person['id']}/security",
            {"eligibility_suspended": False},
            {"If-Match": '"1"'},
        ),
        ("POST", "/v1/facilities", {**FACILITY, "id": 7}, {}),
        ("POST", "/v1/auth/token", {"username": "a", "password": "b", "scope": "admin"}, {}),
        (
            "POST",
            "/v1/operators",
            {"username": "bob", "password": PASSWORD, "roles": ["sponsor"], "password_hash": "x"},
            {},
        ),
    ]
    for method, url, body, extra in cases:
        r = await client.request(method, url, json=body, headers={**admin, **extra})
        problem_body = is_problem(r, 422)
        assert problem_body["errors"][0]["type"] == "extra_forbidden", (url, problem_body)
    # Also inside nested objects: a certificate reference with a stray member.
    r = await client.post(
        "/v1/credentials",
        json={
            "person_id": person["id"],
            "kind": "piv",
            "valid_from": TODAY.isoformat(),
            "valid_until": TODAY.isoformat(),
            "certificates": [{"slot": "9A", "sha256": "ab" * 32, "pem": "..."}],
        },
        headers=admin,
    )
    assert is_problem(r, 422)["errors"][0]["type"] == "extra_forbidden"
    # Nothing was changed by any of it.
    got = ok(await client.get(f"/v1/people/{person['id']}", headers=admin))
    assert got["version"] == 1


async def test_null_for_a_required_field_on_patch_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await make_person(client, admin, external_id="E-1", email="pat@example.com")
    pid = person["id"]
    cred = await sponsor(client, admin, pid)
    fac = ok(await client.post("/v1/facilities", json=FACILITY, headers=admin), 201)
    op = ok(
        await client.post(
            "/v1/operators",
            json={"username": "bob", "password": PASSWORD, "roles": ["sponsor"]},
            headers=admin,
        ),
        201,
    )
    v1 = {"If-Match": '"1"'}
    for url, field, version in (
        (f"/v1/people/{pid}", "given_name", v1),
        (f"/v1/people/{pid}", "affiliation", v1),
        (f"/v1/people/{pid}", "status", v1),
        (f"/v1/people/{pid}/security", "investigation_tier", v1),
        (f"/v1/people/{pid}/security", "cv_enrolled", v1),
        (f"/v1/credentials/{cred['id']}", "valid_until", {"If-Match": f'"{cred["version"]}"'}),
        (f"/v1/credentials/{cred['id']}", "certificates", {"If-Match": f'"{cred["version"]}"'}),
        (f"/v1/facilities/{fac['id']}", "name", v1),
        (f"/v1/facilities/{fac['id']}", "security_level", v1),
        (f"/v1/operators/{op['id']}", "roles", v1),
        (f"/v1/operators/{op['id']}", "disabled", v1),
    ):
        r = await client.patch(url, json={field: None}, headers={**admin, **version})
        body = is_problem(r, 422)
        assert f"{field} cannot be null" in body["detail"], body
    # Fields that may be cleared can be.
    r = await client.patch(
        f"/v1/people/{pid}", json={"email": None, "external_id": None}, headers={**admin, **v1}
    )
    assert ok(r)["email"] is None and ok(r)["external_id"] is None


BIG = [2**31, 2**63, 10**30, -(2**31) - 1, -(2**63) - 1]


async def test_out_of_range_ids_in_the_path_are_4xx(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Ids beyond the 32-bit columns once reached the driver and failed as a 500."""
    for big in BIG:
        for method, url in (
            ("GET", f"/v1/people/{big}"),
            ("GET", f"/v1/people/{big}/security"),
            ("PATCH", f"/v1/people/{big}"),
            ("POST", f"/v1/alerts/{big}/resolve"),
            ("GET", f"/v1/credentials/{big}"),
            ("GET", f"/v1/credentials/{big}/history"),
            ("POST", f"/v1/credentials/{big}/enroll"),
            ("GET", f"/v1/facilities/{big}"),
            ("DELETE", f"/v1/readers/{big}"),
            ("PATCH", f"/v1/operators/{big}"),
        ):
            body = {"json": {}} if method in ("POST", "PATCH") else {}
            r = await client.request(method, url, headers={**admin, "If-Match": '"1"'}, **body)
            is_problem(r, 404, 422)


async def test_out_of_range_ids_in_queries_and_bodies_are_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_person(client, admin)
    fac = ok(await client.post("/v1/facilities", json=FACILITY, headers=admin), 201)
    for big in BIG:
        for url, params in (
            ("/v1/people", {"after": big}),
            ("/v1/credentials", {"person_id": big}),
            ("/v1/areas", {"facility_id": big}),
            ("/v1/doors", {"area_id": big}),
            ("/v1/readers", {"door_id": big, "after": 1}),
            ("/v1/operators", {"after": big}),
        ):
            is_problem(await client.get(url, params=params, headers=admin), 422)
        for url, body in (
            (
                "/v1/credentials",
                {
                    "person_id": big,
                    "kind": "piv",
                    "valid_from": "2030-01-01",
                    "valid_until": "2030-01-02",
                },
            ),
            ("/v1/areas", {"facility_id": big, "name": "A", "area_class": "limited"}),
            (
                "/v1/areas",
                {"facility_id": fac["id"], "parent_id": big, "name": "A", "area_class": "limited"},
            ),
            ("/v1/panels", {"facility_id": big, "name": "p", "transport": "osdp"}),
            ("/v1/doors", {"area_id": big, "name": "D"}),
            ("/v1/readers", {"door_id": big, "name": "R", "direction": "in"}),
            (
                "/v1/operators",
                {"username": "bob", "password": PASSWORD, "roles": ["sponsor"], "person_id": big},
            ),
        ):
            is_problem(await client.post(url, json=body, headers=admin), 422)
    # Audit sequence numbers are 64-bit: the largest one is a valid (empty) cursor.
    page = ok(await client.get("/v1/audit", params={"after": 2**63 - 1}, headers=admin))
    assert page == {"items": [], "next_after": None}
    is_problem(await client.get("/v1/audit", params={"after": 2**63}, headers=admin), 422)


async def test_nul_characters_are_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """PostgreSQL text cannot hold NUL; it once failed in the driver as a 500."""
    person = await make_person(client, admin)
    for method, url, body in (
        ("POST", "/v1/people", {**PERSON, "given_name": "Pa\x00t"}),
        ("POST", "/v1/people", {**PERSON, "email": "\x00@example.com"}),
        ("PATCH", f"/v1/people/{person['id']}", {"organization": "\x00"}),
        ("POST", "/v1/facilities", {**FACILITY, "address": "1 Main St\x00"}),
        (
            "POST",
            f"/v1/people/{person['id']}/alerts",
            {"source": "x\x00", "category": "y", "suspends_eligibility": False},
        ),
        ("POST", "/v1/auth/token", {"username": "root\x00", "password": "x"}),
        # Inside a map: a holiday's name (a 500 from the driver before).
        ("POST", "/v1/holiday-calendars", {"name": "fed", "days": {"2027-01-01": "New\x00"}}),
    ):
        r = await client.request(method, url, json=body, headers={**admin, "If-Match": '"1"'})
        assert "NUL" in is_problem(r, 422)["detail"]
    for url, params in (
        ("/v1/people", {"q": "\x00"}),
        ("/v1/people", {"external_id": "a\x00"}),
        ("/v1/credentials", {"badge_number": "\x00"}),
        ("/v1/audit", {"entity_id": "\x00"}),
        ("/v1/audit", {"actor": "operator:\x00"}),
    ):
        r = await client.get(url, params=params, headers=admin)
        body = is_problem(r, 422)
        assert body["errors"][0]["loc"] == ["query", next(iter(params))], body
    # Other control characters are stored and returned as they are.
    r = await client.post("/v1/people", json={**PERSON, "given_name": "Pa\x01t"}, headers=admin)
    assert ok(r, 201)["given_name"] == "Pa\x01t"


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/people", {**PERSON, "given_name": "x" * 101}, "given_name"),
        ("/v1/people", {**PERSON, "external_id": "x" * 65}, "external_id"),
        ("/v1/people", {**PERSON, "organization": "x" * 201}, "organization"),
        ("/v1/facilities", {**FACILITY, "name": "x" * 201}, "name"),
        ("/v1/facilities", {**FACILITY, "code": "x" * 33}, "code"),
        ("/v1/facilities", {**FACILITY, "address": "x" * 401}, "address"),
        ("/v1/facilities", {**FACILITY, "timezone": "x" * 65}, "timezone"),
        ("/v1/panels", {"facility_id": 1, "name": "p" * 65, "transport": "osdp"}, "name"),
        ("/v1/auth/token", {"username": "u" * 65, "password": "x"}, "username"),
        ("/v1/auth/token", {"username": "u", "password": "x" * 1025}, "password"),
        (
            "/v1/operators",
            {"username": "b" * 65, "password": PASSWORD, "roles": ["sponsor"]},
            "username",
        ),
        (
            "/v1/people/1/alerts",
            {"source": "s" * 101, "category": "c", "suspends_eligibility": False},
            "source",
        ),
        (
            "/v1/people/1/alerts",
            {
                "source": "s",
                "category": "c",
                "description": "d" * 4001,
                "suspends_eligibility": False,
            },
            "description",
        ),
        ("/v1/credentials/1/terminate", {"reason": "r" * 2001}, "reason"),
    ],
)
async def test_strings_over_their_maximum_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], url: str, body: Json, field: str
) -> None:
    await make_person(client, admin)
    problem_body = is_problem(await client.post(url, json=body, headers=admin), 422)
    assert problem_body["errors"][0]["loc"] == ["body", field], problem_body


async def test_long_query_strings_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for url, params in (
        ("/v1/people", {"q": "x" * 101}),
        ("/v1/credentials", {"fasc_n": "x" * 51}),
        ("/v1/audit", {"entity": "x" * 33}),
    ):
        is_problem(await client.get(url, params=params, headers=admin), 422)


async def test_invalid_enums_and_emails_are_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    person = await make_person(client, admin)
    for url, body in (
        ("/v1/people", {**PERSON, "affiliation": "alien"}),
        ("/v1/people", {**PERSON, "email": "not-an-email"}),
        ("/v1/people", {**PERSON, "email": "pat@"}),
        ("/v1/people", {**PERSON, "email": "a" * 250 + "@example.com"}),
        ("/v1/areas", {"facility_id": 1, "name": "A", "area_class": "top_secret"}),
        ("/v1/panels", {"facility_id": 1, "name": "p", "transport": "carrier-pigeon"}),
        (
            "/v1/credentials",
            {
                "person_id": person["id"],
                "kind": "gold",
                "valid_from": "2030-01-01",
                "valid_until": "2030-01-02",
            },
        ),
        ("/v1/operators", {"username": "bob", "password": PASSWORD, "roles": ["god"]}),
        ("/v1/operators", {"username": "Bob Smith", "password": PASSWORD, "roles": ["sponsor"]}),
        ("/v1/operators", {"username": "bob", "password": "short", "roles": ["sponsor"]}),
    ):
        is_problem(await client.post(url, json=body, headers=admin), 422)
    for url, params in (
        ("/v1/people", {"status": "zombie"}),
        ("/v1/people", {"affiliation": "alien"}),
        ("/v1/credentials", {"state": "limbo"}),
        ("/v1/credentials", {"kind": "gold"}),
    ):
        is_problem(await client.get(url, params=params, headers=admin), 422)
    r = await client.patch(
        f"/v1/people/{person['id']}",
        json={"status": "retired"},
        headers={**admin, "If-Match": '"1"'},
    )
    is_problem(r, 422)


async def test_body_over_the_limit_is_413(small: httpx.AsyncClient, ops: Operators) -> None:
    admin = await ops.headers("admin")
    big = {**PERSON, "organization": "x" * 4000}
    r = await small.post("/v1/people", json=big, headers=admin)
    body = is_problem(r, 413)
    assert body["code"] == "body_too_large" and "2048" in body["detail"]
    # Also without Content-Length: a chunked body is counted as it streams in.
    chunks = [b'{"given_name": "', b"x" * 1500, b"x" * 1500, b'"}']

    async def stream() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    r = await small.post(
        "/v1/people", content=stream(), headers={**admin, "content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert is_problem(r, 413)["code"] == "body_too_large"
    # A lying Content-Length bigger than the limit is refused before reading anything.
    r = await small.post(
        "/v1/people",
        content=b"{}",
        headers={**admin, "content-type": "application/json", "content-length": "999999"},
    )
    is_problem(r, 413)
    # Just under the limit goes through, and nobody was created by the refused ones.
    ok(
        await small.post("/v1/people", json={**PERSON, "organization": "x" * 200}, headers=admin),
        201,
    )
    assert len(ok(await small.get("/v1/people", headers=admin))["items"]) == 1
    metrics = rejected((await small.get("/metrics", headers=admin)).text)
    assert metrics["body_too_large"] == 3


async def test_unknown_route_is_404_problem(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for url in ("/v1/nothing", "/v2/people", "/v1/people/1/nothing", "/v1/credentials/1/fly"):
        body = is_problem(await client.get(url, headers=admin), 404)
        assert body["code"] == "http_404"
    is_problem(await client.post("/v1/credentials/1/fly", json={}, headers=admin), 404, 405)


async def test_wrong_method_is_405_problem_with_allow(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for method, url, allowed in (
        ("PUT", "/v1/people", {"GET", "POST"}),
        ("DELETE", "/v1/people/1", {"GET", "PATCH"}),
        ("GET", "/v1/auth/token", {"POST"}),
        ("POST", "/healthz", {"GET"}),
        ("GET", "/v1/credentials/1/enroll", {"POST"}),
    ):
        r = await client.request(method, url, headers=admin)
        body = is_problem(r, 405)
        assert body["code"] == "http_405"
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, r.headers


async def test_rejections_are_counted_by_reason(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    before = rejected((await client.get("/metrics", headers=admin)).text)
    await client.post(
        "/v1/people", content=b"{", headers={**admin, "content-type": "application/json"}
    )
    await client.post("/v1/people", json={**PERSON, "nope": 1}, headers=admin)
    await client.get("/v1/nothing", headers=admin)
    await client.put("/v1/people", headers=admin)
    await client.get("/v1/people")
    await client.patch("/v1/people/1", json={}, headers={**admin, "If-Match": "x"})
    after = rejected((await client.get("/metrics", headers=admin)).text)
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert grew == {
        "validation": 2,
        "http_404": 1,
        "http_405": 1,
        "no_token": 1,
        "bad_if_match": 1,
    }, after


# --- property-based: schemathesis over the whole OpenAPI schema ---------------------------

try:
    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.generation import GenerationMode
except ImportError:  # pragma: no cover - a dev dependency; say so rather than pass quietly
    schemathesis = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def fuzz_world(
    backend: str,
    templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    password_hash: str,
) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """A database for the whole fuzz run, an app on it and an admin token.

    Synchronous: schemathesis drives the ASGI app from its own event-loop thread, so the app
    builds (and at the end disposes) its own engine there, and this fixture holds no
    connection bound to another loop.
    """
    name = f"accessd_f_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        shutil.copyfile(templates["sqlite"], path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"'))
        url = _pg_url(name)
    try:
        headers = asyncio.run(_admin_headers(url, password_hash))
        yield create_app(Settings(database_url=url)), headers
    finally:
        if backend == "postgresql":
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_headers(url: str, password_hash: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        ops = Operators(make_sessionmaker(engine), password_hash)
        return await ops.headers("admin")
    finally:
        await engine.dispose()


def _fuzz_schema() -> Any:
    """The schema, read once at import from an app that is never started (its lifespan
    would load the decision snapshot from a database)."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], allow_x00=True
    )
    # 405s for unlisted methods are tested above; sending each one to every path doubled
    # the run.
    schema.config.phases.coverage.unexpected_methods = set()
    # Logging out would revoke the token every other operation is called with.
    return schema.exclude(path="/v1/auth/logout")


if schemathesis is not None:

    @_fuzz_schema().parametrize()
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def test_no_generated_request_makes_a_server_error(
        case: Any, fuzz_world: tuple[FastAPI, dict[str, str]]
    ) -> None:
        """Valid and invalid requests alike, as the admin: any answer but a 5xx, and only
        answers the OpenAPI document promises (status, content type, headers, body)."""
        app, headers = fuzz_world
        case.call_and_validate(
            app=app,
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_headers_conformance,
                response_schema_conformance,
            ],
        )

else:  # pragma: no cover

    def test_no_generated_request_makes_a_server_error() -> None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
