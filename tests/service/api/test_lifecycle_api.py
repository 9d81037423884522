"""The credential lifecycle through the HTTP API: the FIPS 201-3 path, its history, separation
of duties, identifiers, validity, events, and operators who are also cardholders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.events import CredentialStateChanged
from accessd.services import credentials as credential_service
from accessd.services.actors import Actor
from policies.lifecycle import Action
from tests.conftest import Operators, Recorder
from tests.helpers import TODAY, act, adjudicate, make_person, ok, problem, sponsor

ALL_ACTIONS = [a.value for a in Action]
FASC_N = "d4e739da739ced39ce739d836858210842108421c84210c3eb"
CARD_UUID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SHA_A = "a" * 64
SHA_B = "b" * 64


@dataclass
class Op:
    id: int
    headers: dict[str, str]


@dataclass
class Cast:
    """One operator per duty, as a well-run badge office has them."""

    sponsor: Op
    registrar: Op
    adjudicator: Op
    issuer: Op
    officer: Op


async def make_op(ops: Operators, *roles: str, person_id: int | None = None) -> Op:
    op_id, headers = await ops.make(*roles, person_id=person_id)
    return Op(op_id, headers)


async def cast_of(ops: Operators) -> Cast:
    return Cast(
        sponsor=await make_op(ops, "sponsor"),
        registrar=await make_op(ops, "registrar"),
        adjudicator=await make_op(ops, "adjudicator"),
        issuer=await make_op(ops, "issuer"),
        officer=await make_op(ops, "security_officer"),
    )


async def cleared_person(client: httpx.AsyncClient, c: Cast, **extra: Any) -> int:
    person = await make_person(client, c.sponsor.headers, **extra)
    await adjudicate(client, c.adjudicator.headers, person["id"])
    return int(person["id"])


async def step(
    client: httpx.AsyncClient, op: Op, cred_id: int, action: str, reason: str = ""
) -> dict[str, Any]:
    result: dict[str, Any] = ok(await act(client, op.headers, cred_id, action, reason))
    return result


async def active_credential(client: httpx.AsyncClient, c: Cast, person_id: int) -> int:
    """Sponsor → enroll → adjudicate → issue → activate, each by its own operator."""
    cred_id = int((await sponsor(client, c.sponsor.headers, person_id))["id"])
    await step(client, c.registrar, cred_id, "enroll")
    await step(client, c.adjudicator, cred_id, "adjudicate")
    await step(client, c.issuer, cred_id, "issue")
    await step(client, c.registrar, cred_id, "activate")
    return cred_id


async def state_of(client: httpx.AsyncClient, headers: dict[str, str], cred_id: int) -> str:
    state: str = ok(await client.get(f"/v1/credentials/{cred_id}", headers=headers))["state"]
    return state


async def history(
    client: httpx.AsyncClient, headers: dict[str, str], cred_id: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(
        await client.get(f"/v1/credentials/{cred_id}/history", headers=headers)
    )
    return rows


def six_years_after(d: date) -> date:
    try:
        return d.replace(year=d.year + 6)
    except ValueError:
        return d.replace(year=d.year + 6, day=28)


# --- the path a card takes ---------------------------------------------------------------


async def test_four_operators_take_a_card_from_sponsorship_to_active(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cred = await sponsor(client, c.sponsor.headers, pid)
    assert cred["state"] == "requested" and cred["sponsor_id"] == c.sponsor.id
    assert set(cred["allowed_actions"]) == {"enroll", "terminate"}
    cid = cred["id"]

    enrolled = await step(client, c.registrar, cid, "enroll")
    assert enrolled["state"] == "enrolled" and enrolled["registrar_id"] == c.registrar.id
    adjudicated = await step(client, c.adjudicator, cid, "adjudicate")
    assert adjudicated["state"] == "adjudicated"
    assert adjudicated["adjudicator_id"] == c.adjudicator.id
    issued = await step(client, c.issuer, cid, "issue")
    assert issued["state"] == "issued" and issued["issuer_id"] == c.issuer.id
    active = await step(client, c.registrar, cid, "activate")
    assert active["state"] == "active"
    assert set(active["allowed_actions"]) == {
        "suspend",
        "terminate",
        "report_lost",
        "report_stolen",
        "report_damaged",
    }
    people = {active[k] for k in ("sponsor_id", "registrar_id", "adjudicator_id", "issuer_id")}
    assert len(people) == 4


async def test_history_records_who_did_each_step_when_and_why(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    before = datetime.now(UTC)
    cid = (await sponsor(client, c.sponsor.headers, pid, reason="new hire"))["id"]
    await step(client, c.registrar, cid, "enroll", "documents checked")
    await step(client, c.adjudicator, cid, "adjudicate", "T3 favorable")
    await step(client, c.issuer, cid, "issue", "card printed")
    await step(client, c.registrar, cid, "activate", "PIN set")
    await step(client, c.officer, cid, "suspend", "left badge unattended")
    after = datetime.now(UTC)

    rows = await history(client, c.officer.headers, cid)
    assert [
        (r["action"], r["from_state"], r["to_state"], r["actor_id"], r["reason"]) for r in rows
    ] == [
        ("sponsor", None, "requested", c.sponsor.id, "new hire"),
        ("enroll", "requested", "enrolled", c.registrar.id, "documents checked"),
        ("adjudicate", "enrolled", "adjudicated", c.adjudicator.id, "T3 favorable"),
        ("issue", "adjudicated", "issued", c.issuer.id, "card printed"),
        ("activate", "issued", "active", c.registrar.id, "PIN set"),
        ("suspend", "active", "suspended", c.officer.id, "left badge unattended"),
    ]
    stamps = [datetime.fromisoformat(r["at"]) for r in rows]
    assert all(s.tzinfo is not None for s in stamps)
    assert stamps == sorted(stamps)
    assert before - timedelta(seconds=1) <= stamps[0] and stamps[-1] <= after + timedelta(seconds=1)


async def test_history_of_a_missing_credential_is_404(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    headers = await ops.headers("auditor")
    problem(await client.get("/v1/credentials/999999/history", headers=headers), 404)


# --- separation of duties ----------------------------------------------------------------


async def test_sponsor_who_also_holds_issuer_role_cannot_issue_what_they_sponsored(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    both = await make_op(ops, "sponsor", "issuer")
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, both.headers, pid))["id"]
    await step(client, c.registrar, cid, "enroll")
    await step(client, c.adjudicator, cid, "adjudicate")

    problem(await act(client, both.headers, cid, "issue"), 409, "separation_of_duties")
    assert await state_of(client, c.issuer.headers, cid) == "adjudicated"
    assert [r["action"] for r in await history(client, c.issuer.headers, cid)] == [
        "sponsor",
        "enroll",
        "adjudicate",
    ]
    # Another issuer may; and the dual-role operator may issue cards someone else sponsored.
    assert (await step(client, c.issuer, cid, "issue"))["state"] == "issued"
    other = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.registrar, other, "enroll")
    await step(client, c.adjudicator, other, "adjudicate")
    assert (await step(client, both, other, "issue"))["issuer_id"] == both.id


async def test_adjudicator_who_also_holds_issuer_role_cannot_issue_what_they_adjudicated(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    both = await make_op(ops, "adjudicator", "issuer")
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.registrar, cid, "enroll")
    await step(client, both, cid, "adjudicate")

    problem(await act(client, both.headers, cid, "issue"), 409, "separation_of_duties")
    assert await state_of(client, c.issuer.headers, cid) == "adjudicated"
    assert (await step(client, c.issuer, cid, "issue"))["state"] == "issued"


async def test_admin_with_every_permission_still_cannot_issue_alone(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    admin = await make_op(ops, "admin")
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, admin.headers, pid))["id"]
    await step(client, admin, cid, "enroll")
    await step(client, admin, cid, "adjudicate")
    problem(await act(client, admin.headers, cid, "issue"), 409, "separation_of_duties")


async def test_actions_need_the_roles_permission(client: httpx.AsyncClient, ops: Operators) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    body = problem(await act(client, c.sponsor.headers, cid, "enroll"), 403, "forbidden")
    assert body["permission"] == "credentials:enroll"
    problem(await act(client, c.registrar.headers, cid, "terminate"), 403, "forbidden")
    problem(await act(client, c.issuer.headers, cid, "adjudicate"), 403, "forbidden")
    problem(await act(client, c.adjudicator.headers, cid, "issue"), 403, "forbidden")
    assert await state_of(client, c.sponsor.headers, cid) == "requested"


# --- adjudication ------------------------------------------------------------------------


async def test_adjudicate_is_refused_until_the_holder_is_favorably_adjudicated(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = (await make_person(client, c.sponsor.headers))["id"]  # adjudication pending
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.registrar, cid, "enroll")
    problem(
        await act(client, c.adjudicator.headers, cid, "adjudicate"),
        409,
        "adjudication_not_favorable",
    )
    assert await state_of(client, c.sponsor.headers, cid) == "enrolled"
    await adjudicate(client, c.adjudicator.headers, pid, "favorable")
    assert (await step(client, c.adjudicator, cid, "adjudicate"))["state"] == "adjudicated"


async def test_issue_is_refused_when_the_adjudication_is_no_longer_favorable(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.registrar, cid, "enroll")
    await step(client, c.adjudicator, cid, "adjudicate")
    await adjudicate(client, c.adjudicator.headers, pid, "pending")  # reopened

    body = problem(await act(client, c.issuer.headers, cid, "issue"), 409)
    assert body["code"] == "adjudication_not_favorable"
    assert body["state"] == "adjudicated"
    assert await state_of(client, c.issuer.headers, cid) == "adjudicated"


# --- suspension, termination, loss, destruction -------------------------------------------


async def test_suspended_card_is_reinstated_to_active(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    cid = await active_credential(client, c, await cleared_person(client, c))
    suspended = await step(client, c.officer, cid, "suspend", "investigation")
    assert suspended["state"] == "suspended"
    assert set(suspended["allowed_actions"]) == {
        "reinstate",
        "terminate",
        "report_lost",
        "report_stolen",
        "report_damaged",
    }
    assert (await step(client, c.officer, cid, "reinstate", "cleared"))["state"] == "active"


async def test_terminated_card_cannot_come_back_and_is_destroyed(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    admin = await make_op(ops, "admin")
    cid = await active_credential(client, c, await cleared_person(client, c))
    assert (await step(client, c.officer, cid, "terminate", "separated"))["state"] == "terminated"
    for action in set(ALL_ACTIONS) - {"destroy"}:
        problem(await act(client, admin.headers, cid, action), 409, "illegal_transition")
    assert (await step(client, c.issuer, cid, "destroy", "shredded"))["state"] == "destroyed"


async def test_request_can_be_terminated_before_issue(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    cid = (await sponsor(client, c.sponsor.headers, await cleared_person(client, c)))["id"]
    assert (await step(client, c.officer, cid, "terminate", "withdrawn"))["state"] == "terminated"


async def test_lost_card_is_destroyed_and_destroyed_is_final(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    admin = await make_op(ops, "admin")  # every permission: only the lifecycle can refuse
    cid = await active_credential(client, c, await cleared_person(client, c))
    assert (await step(client, c.registrar, cid, "report_lost", "left on train"))["state"] == "lost"
    problem(await act(client, admin.headers, cid, "reinstate"), 409, "illegal_transition")
    destroyed = await step(client, c.officer, cid, "destroy", "found and shredded")
    assert destroyed["state"] == "destroyed" and destroyed["allowed_actions"] == []
    rows_before = await history(client, admin.headers, cid)

    for action in ALL_ACTIONS:
        problem(await act(client, admin.headers, cid, action), 409, "illegal_transition")
    etag = {"If-Match": f'"{destroyed["version"]}"'}
    problem(
        await client.patch(
            f"/v1/credentials/{cid}",
            json={"valid_until": TODAY.isoformat()},
            headers={**admin.headers, **etag},
        ),
        409,
        "credential_final",
    )
    problem(
        await client.patch(
            f"/v1/credentials/{cid}",
            json={"badge_number": "B-9"},
            headers={**admin.headers, **etag},
        ),
        409,
        "identifiers_frozen",
    )
    assert await state_of(client, admin.headers, cid) == "destroyed"
    assert await history(client, admin.headers, cid) == rows_before


# --- identifiers -------------------------------------------------------------------------


async def patch(
    client: httpx.AsyncClient, op: Op, cid: int, body: dict[str, Any], version: int | None
) -> httpx.Response:
    headers = dict(op.headers)
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await client.patch(f"/v1/credentials/{cid}", json=body, headers=headers)


async def test_identifiers_bind_before_issue_with_if_match_and_freeze_after(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cred = await sponsor(client, c.sponsor.headers, pid)
    cid, version = cred["id"], cred["version"]

    problem(await patch(client, c.issuer, cid, {"fasc_n": FASC_N}, None), 428, "if_match_required")
    problem(await patch(client, c.issuer, cid, {"fasc_n": FASC_N}, version + 5), 412)
    r = await patch(client, c.issuer, cid, {"fasc_n": FASC_N}, version)
    bound = ok(r)
    assert bound["fasc_n"] == FASC_N and bound["version"] == version + 1
    assert r.headers["etag"] == f'"{version + 1}"'
    # Stale now: the version moved on.
    problem(await patch(client, c.issuer, cid, {"card_uuid": CARD_UUID}, version), 412)

    await step(client, c.registrar, cid, "enroll")
    cur = ok(await client.get(f"/v1/credentials/{cid}", headers=c.issuer.headers))
    bound = ok(
        await patch(
            client,
            c.registrar,
            cid,
            {
                "card_uuid": CARD_UUID,
                "badge_number": "HQ-1001",
                "certificates": [{"slot": "9a", "sha256": SHA_A}, {"slot": "9E", "sha256": SHA_B}],
            },
            cur["version"],
        )
    )
    assert bound["card_uuid"] == CARD_UUID and bound["badge_number"] == "HQ-1001"
    assert sorted((x["slot"], x["sha256"]) for x in bound["certificates"]) == [
        ("9A", SHA_A),
        ("9E", SHA_B),
    ]
    await step(client, c.adjudicator, cid, "adjudicate")
    cur = ok(await client.get(f"/v1/credentials/{cid}", headers=c.issuer.headers))
    bound = ok(await patch(client, c.issuer, cid, {"badge_number": "HQ-1002"}, cur["version"]))
    assert bound["badge_number"] == "HQ-1002"

    issued = await step(client, c.issuer, cid, "issue")
    v = issued["version"]
    frozen: list[dict[str, Any]] = [
        {"fasc_n": FASC_N.replace("d4", "d5", 1)},
        {"fasc_n": None},
        {"card_uuid": CARD_UUID.replace("3f", "40", 1)},
        {"badge_number": "HQ-1003"},
        {"certificates": [{"slot": "9A", "sha256": "c" * 64}]},
        {"certificates": []},
    ]
    for body in frozen:
        problem(await patch(client, c.issuer, cid, body, v), 409, "identifiers_frozen")
    # Validity of an issued card may only shrink.
    later = (TODAY + timedelta(days=365 * 5 + 10)).isoformat()
    problem(await patch(client, c.issuer, cid, {"valid_until": later}, v), 409, "validity_frozen")
    sooner = (TODAY + timedelta(days=30)).isoformat()
    shortened = ok(await patch(client, c.issuer, cid, {"valid_until": sooner}, v))
    assert shortened["valid_until"] == sooner

    final = ok(await client.get(f"/v1/credentials/{cid}", headers=c.issuer.headers))
    assert (final["fasc_n"], final["card_uuid"], final["badge_number"]) == (
        FASC_N,
        CARD_UUID,
        "HQ-1002",
    )
    assert len(final["certificates"]) == 2
    found = ok(
        await client.get(
            "/v1/credentials", params={"fasc_n": FASC_N.upper()}, headers=c.issuer.headers
        )
    )
    assert [x["id"] for x in found["items"]] == [cid]


async def test_an_identifier_belongs_to_one_credential_only(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    first_holder = await cleared_person(client, c)
    second_holder = await cleared_person(client, c)
    first = await sponsor(
        client,
        c.sponsor.headers,
        first_holder,
        fasc_n=FASC_N,
        card_uuid=CARD_UUID,
        badge_number="HQ-7",
        certificates=[{"slot": "9A", "sha256": SHA_A}],
    )
    url = "/v1/credentials"
    base = {
        "person_id": second_holder,
        "kind": "piv",
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=365)).isoformat(),
    }
    for extra in (
        {"fasc_n": FASC_N},
        {"card_uuid": CARD_UUID},
        {"badge_number": "HQ-7"},
        {"certificates": [{"slot": "9E", "sha256": SHA_A}]},
    ):
        body = problem(
            await client.post(url, json={**base, **extra}, headers=c.sponsor.headers),
            409,
            "identifier_taken",
        )
        assert str(first["id"]) in body["detail"]
    problem(
        await client.post(
            url,
            json={
                **base,
                "certificates": [{"slot": "9A", "sha256": SHA_B}, {"slot": "9E", "sha256": SHA_B}],
            },
            headers=c.sponsor.headers,
        ),
        422,
        "duplicate_certificate",
    )

    second = await sponsor(client, c.sponsor.headers, second_holder)
    for body in (
        {"fasc_n": FASC_N},
        {"card_uuid": CARD_UUID},
        {"badge_number": "HQ-7"},
        {"certificates": [{"slot": "9A", "sha256": SHA_A}]},
    ):
        problem(
            await patch(client, c.issuer, second["id"], body, second["version"]),
            409,
            "identifier_taken",
        )
    # Re-sending a credential's own identifiers is not a clash with itself.
    same = ok(
        await patch(
            client,
            c.issuer,
            first["id"],
            {"fasc_n": FASC_N, "certificates": [{"slot": "9A", "sha256": SHA_A}]},
            first["version"],
        )
    )
    assert same["version"] == first["version"]
    listed = ok(await client.get(url, params={"badge_number": "HQ-7"}, headers=c.issuer.headers))
    assert [x["id"] for x in listed["items"]] == [first["id"]]


# --- kinds and validity ------------------------------------------------------------------


async def test_visitor_gets_only_a_temporary_badge_issued_without_adjudication(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    visitor = (await make_person(client, c.sponsor.headers, affiliation="visitor"))["id"]
    for kind in ("piv", "piv_i", "local_badge", "law_enforcement"):
        body = {
            "person_id": visitor,
            "kind": kind,
            "valid_from": TODAY.isoformat(),
            "valid_until": (TODAY + timedelta(days=30)).isoformat(),
        }
        problem(
            await client.post("/v1/credentials", json=body, headers=c.sponsor.headers),
            409,
            "kind_not_allowed",
        )
    problem(
        await client.post(
            "/v1/credentials",
            json={
                "person_id": visitor,
                "kind": "temporary",
                "valid_from": TODAY.isoformat(),
                "valid_until": (TODAY + timedelta(days=181)).isoformat(),
            },
            headers=c.sponsor.headers,
        ),
        422,
        "validity_too_long",
    )
    badge = await sponsor(client, c.sponsor.headers, visitor, kind="temporary", days=180)
    assert "issue" in badge["allowed_actions"]
    issued = await step(client, c.issuer, badge["id"], "issue", "escorted visit")
    assert issued["state"] == "issued" and issued["adjudicator_id"] is None
    assert (await step(client, c.registrar, badge["id"], "activate"))["state"] == "active"


async def test_law_enforcement_credential_is_for_officers_only(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    employee = await cleared_person(client, c)
    body = {
        "person_id": employee,
        "kind": "law_enforcement",
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=30)).isoformat(),
    }
    problem(
        await client.post("/v1/credentials", json=body, headers=c.sponsor.headers),
        409,
        "kind_not_allowed",
    )
    officer = await cleared_person(client, c, affiliation="law_enforcement")
    await sponsor(client, c.sponsor.headers, officer, kind="law_enforcement")


async def test_validity_is_at_most_six_calendar_years(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)

    def body(valid_from: date, valid_until: date) -> dict[str, Any]:
        return {
            "person_id": pid,
            "kind": "piv",
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat(),
        }

    post = "/v1/credentials"
    # 2027-03-01 to 2033-03-01 holds two 29 Februarys: six years are 2192 days.
    start = date(2027, 3, 1)
    ok(await client.post(post, json=body(start, date(2033, 3, 1)), headers=c.sponsor.headers), 201)
    problem(
        await client.post(post, json=body(start, date(2033, 3, 2)), headers=c.sponsor.headers),
        422,
        "validity_too_long",
    )
    latest = six_years_after(TODAY)
    ok(await client.post(post, json=body(TODAY, latest), headers=c.sponsor.headers), 201)
    problem(
        await client.post(
            post, json=body(TODAY, latest + timedelta(days=1)), headers=c.sponsor.headers
        ),
        422,
        "validity_too_long",
    )
    problem(
        await client.post(
            post, json=body(TODAY, TODAY - timedelta(days=1)), headers=c.sponsor.headers
        ),
        422,
        "validity_inverted",
    )


# --- events ------------------------------------------------------------------------------


async def test_every_transition_tells_the_bus_whether_the_card_still_opens_doors(
    client: httpx.AsyncClient, ops: Operators, events: Recorder
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    assert events.of(CredentialStateChanged) == []  # sponsorship opens no door
    await step(client, c.registrar, cid, "enroll")
    await step(client, c.adjudicator, cid, "adjudicate")
    await step(client, c.issuer, cid, "issue")
    await step(client, c.registrar, cid, "activate", "PIN set")
    await step(client, c.officer, cid, "suspend", "lost trust")
    problem(await act(client, c.officer.headers, cid, "activate"), 403)
    problem(await act(client, c.issuer.headers, cid, "activate"), 409, "illegal_transition")
    await step(client, c.officer, cid, "reinstate")

    seen = events.of(CredentialStateChanged)
    assert all(e.credential_id == cid and e.person_id == pid for e in seen)
    assert [(e.from_state, e.to_state, e.usable) for e in seen] == [
        ("requested", "enrolled", False),
        ("enrolled", "adjudicated", False),
        ("adjudicated", "issued", False),
        ("issued", "active", True),
        ("active", "suspended", False),
        ("suspended", "active", True),
    ]
    assert seen[3].reason == "PIN set" and seen[4].reason == "lost trust"


async def test_state_change_is_published_only_after_commit(
    client: httpx.AsyncClient,
    ops: Operators,
    events: Recorder,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = (await sponsor(client, c.sponsor.headers, pid))["id"]
    registrar = Actor(c.registrar.id, "registrar", frozenset({"registrar"}))

    async with sessions() as s:
        await credential_service.transition(s, registrar, cid, Action.ENROLL, reason="x")
        await s.rollback()
    assert events.of(CredentialStateChanged) == []
    assert await state_of(client, c.sponsor.headers, cid) == "requested"

    async with sessions() as s:
        await credential_service.transition(s, registrar, cid, Action.ENROLL, reason="y")
        await s.flush()
        assert events.of(CredentialStateChanged) == []  # staged, not yet published
        await s.commit()
    [ev] = events.of(CredentialStateChanged)
    assert (ev.credential_id, ev.to_state, ev.usable, ev.reason) == (cid, "enrolled", False, "y")
    assert [r["reason"] for r in await history(client, c.sponsor.headers, cid)] == ["", "y"]


# --- operators who are cardholders -------------------------------------------------------


async def test_operator_cannot_act_on_own_credential_but_may_report_it_lost(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    me = await make_op(
        ops, "sponsor", "registrar", "adjudicator", "issuer", "security_officer", person_id=pid
    )
    body = {
        "person_id": pid,
        "kind": "piv",
        "valid_from": TODAY.isoformat(),
        "valid_until": (TODAY + timedelta(days=365)).isoformat(),
    }
    problem(
        await client.post("/v1/credentials", json=body, headers=me.headers), 409, "self_dealing"
    )
    cred = await sponsor(client, c.sponsor.headers, pid)
    cid = cred["id"]
    problem(
        await patch(client, me, cid, {"badge_number": "ME-1"}, cred["version"]), 409, "self_dealing"
    )
    for action, by in (
        ("enroll", c.registrar),
        ("adjudicate", c.adjudicator),
        ("issue", c.issuer),
        ("activate", c.registrar),
        ("suspend", c.officer),
    ):
        problem(await act(client, me.headers, cid, action), 409, "self_dealing")
        await step(client, by, cid, action)
    problem(await act(client, me.headers, cid, "reinstate"), 409, "self_dealing")
    problem(await act(client, me.headers, cid, "terminate"), 409, "self_dealing")
    assert (await step(client, me, cid, "report_lost", "lost my own card"))["state"] == "lost"
    problem(await act(client, me.headers, cid, "destroy"), 409, "self_dealing")
    assert [r["actor_id"] for r in await history(client, me.headers, cid)][-1] == me.id

    # The same operator works on other people's credentials as usual.
    other = await cleared_person(client, c)
    theirs = await sponsor(client, me.headers, other)
    assert (await step(client, me, theirs["id"], "enroll"))["state"] == "enrolled"


async def test_stale_if_match_on_an_action_is_refused(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    cred = await sponsor(client, c.sponsor.headers, await cleared_person(client, c))
    r = await client.post(
        f"/v1/credentials/{cred['id']}/enroll",
        json={"reason": ""},
        headers={**c.registrar.headers, "If-Match": f'"{cred["version"] + 1}"'},
    )
    problem(r, 412, "stale_version")
    r = await client.post(
        f"/v1/credentials/{cred['id']}/enroll",
        json={"reason": ""},
        headers={**c.registrar.headers, "If-Match": f'"{cred["version"]}"'},
    )
    assert ok(r)["state"] == "enrolled"
    assert r.headers["etag"] == f'"{cred["version"] + 1}"'


async def test_identifiers_are_taken_in_either_case_and_stored_lowercase(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    person = await make_person(client, await ops.headers("registrar"))
    cred = await sponsor(
        client,
        await ops.headers("sponsor"),
        person["id"],
        card_uuid="00000000-0000-4000-8000-0000000000AB",
        fasc_n="D" * 50,
    )
    assert cred["card_uuid"] == "00000000-0000-4000-8000-0000000000ab"
    assert cred["fasc_n"] == "d" * 50
