"""A door_reader account serves the readers it is bound to and no others: asking elsewhere
is a 403 that is audited and tells nothing of the card; and a reply to a door tells it what
to do at the door, not whose card it was."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.api.routes.decisions import public
from policies.decision import Decision, Reason
from policies.reasons import NOT_AUTHORIZED
from tests.conftest import Operators
from tests.helpers import ok, problem
from tests.service.api.test_decisions_api import MONDAY_10AM, ask, setup_site


async def audit_actions(client: httpx.AsyncClient, ops: Operators) -> list[dict[str, object]]:
    auditor = await ops.headers("auditor")
    items: list[dict[str, object]] = ok(
        await client.get("/v1/audit", params={"entity": "operator"}, headers=auditor)
    )["items"]
    return items


async def test_a_door_reader_asking_at_a_reader_it_does_not_serve_is_403_audited_and_told_nothing(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    account_id, headers = await ops.make("door_reader", readers=[site["main"]])
    served = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=headers
        )
    )
    assert served["reader_id"] == site["main"]

    refused = problem(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_auth"), headers=headers
        ),
        403,
        "reader_not_bound",
    )
    assert "person" not in str(refused) and str(site["person"]["id"]) not in refused["detail"]
    assert set(refused) <= {"type", "title", "status", "detail", "code", "instance", "permission"}
    # Not decided at all: nothing stored for the office reader.
    await site["state"].decisions.store.flush()
    officer = await ops.headers("security_officer")
    stored = ok(await client.get("/v1/decisions", headers=officer))["items"]
    assert [e["reader_id"] for e in stored] == [site["main"]]
    # Nor a challenge for a card there.
    problem(
        await client.post("/v1/challenges", json={"reader_id": site["office"]}, headers=headers),
        403,
        "reader_not_bound",
    )
    ok(await client.post("/v1/challenges", json={"reader_id": site["main"]}, headers=headers), 201)

    refusals = [e for e in await audit_actions(client, ops) if e["entity_id"] == str(account_id)]
    assert [(e["action"], e["data"]) for e in refusals if "refused" in str(e["action"])] == [
        ("decision.refused", {"reader_id": site["office"], "why": "reader_not_bound"}),
        ("challenge.refused", {"reader_id": site["office"], "why": "reader_not_bound"}),
    ]


async def test_a_door_reader_bound_to_no_reader_may_ask_nowhere(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    headers = await ops.headers("door_reader")
    problem(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, "pki_cak"), headers=headers
        ),
        403,
        "reader_not_bound",
    )


async def test_a_binding_is_set_through_the_api_audited_and_takes_effect_at_once(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    site = await setup_site(client, ops, sessions)
    admin = await ops.headers("admin")
    body = {"username": "door-7", "password": "a long enough password", "roles": ["door_reader"]}
    problem(
        await client.post("/v1/operators", json={**body, "readers": [987654]}, headers=admin),
        422,
        "unknown_reader",
    )
    problem(
        await client.post(
            "/v1/operators",
            json={**body, "roles": ["auditor"], "readers": [site["main"]]},
            headers=admin,
        ),
        422,
        "readers_without_door_reader",
    )
    made = ok(
        await client.post("/v1/operators", json={**body, "readers": [site["main"]]}, headers=admin),
        201,
    )
    assert made["readers"] == [site["main"]]
    token = ok(
        await client.post(
            "/v1/auth/token", json={"username": "door-7", "password": body["password"]}
        )
    )["access_token"]
    door = {"Authorization": f"Bearer {token}"}
    me = ok(await client.get("/v1/auth/me", headers=door))
    assert me["readers"] == [site["main"]]
    main = ask(site["main"], MONDAY_10AM, "pki_cak")
    ok(await client.post("/v1/decisions", json=main, headers=door))  # now cached

    moved = ok(
        await client.patch(
            f"/v1/operators/{made['id']}",
            json={"readers": [site["office"]]},
            headers={**admin, "If-Match": f'"{made["version"]}"'},
        )
    )
    assert moved["readers"] == [site["office"]]
    # The same token, bound anew on its very next request (its cached answer is gone).
    problem(await client.post("/v1/decisions", json=main, headers=door), 403, "reader_not_bound")
    ok(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_auth"), headers=door
        )
    )
    changes = [
        e["data"]
        for e in await audit_actions(client, ops)
        if e["action"] == "operator.update" and e["entity_id"] == str(made["id"])
    ]
    assert changes == [{"changes": {"readers": [[site["main"]], [site["office"]]]}}]

    # Dropping the role drops the binding with it.
    dropped = ok(
        await client.patch(
            f"/v1/operators/{made['id']}",
            json={"roles": ["auditor"]},
            headers={**admin, "If-Match": f'"{moved["version"]}"'},
        )
    )
    assert dropped["readers"] == []


def test_a_door_is_not_told_of_the_persons_security_record() -> None:
    at = datetime(2026, 12, 7, 15, tzinfo=UTC)
    for reason in (
        Reason.ELIGIBILITY_SUSPENDED,
        Reason.INSUFFICIENT_CLEARANCE,
        Reason.NOT_READ_IN,
        Reason.PERSON_INACTIVE,
    ):
        d = Decision(False, reason, reader_id=3, person_id=41, credential_id=9, at=at)
        assert public(d).reason == reason.value  # to those who may read the log
        door = public(d, full=False)
        assert (door.reason, door.person_id, door.credential_id) == (NOT_AUTHORIZED, None, None)
    pin = Decision(False, Reason.FACTORS_MISSING, ("pin",), reader_id=3, person_id=41, at=at)
    assert (public(pin, full=False).reason, public(pin, full=False).required) == (
        "factors_missing",
        ["pin"],
    )


async def test_a_flood_of_refused_requests_fills_the_audit_log_only_to_the_accounts_budget(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A device asking again and again at a reader it does not serve is refused every time,
    but audited only up to its account's budget (20, then one a second); the rest are
    counted. Another account's budget is its own."""
    import time

    from accessd import budget

    site = await setup_site(client, ops, sessions)
    flooder, headers = await ops.make("door_reader", readers=[site["main"]])
    other, other_headers = await ops.make("door_reader", readers=[site["main"]])
    flood = 40
    started = time.monotonic()
    for _ in range(flood):
        problem(
            await client.post(
                "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_cak"), headers=headers
            ),
            403,
            "reader_not_bound",
        )
    elapsed = time.monotonic() - started
    problem(
        await client.post(
            "/v1/decisions", json=ask(site["office"], MONDAY_10AM, "pki_cak"), headers=other_headers
        ),
        403,
        "reader_not_bound",
    )
    entries = await audit_actions(client, ops)

    def refusals_of(account: int) -> list[dict[str, object]]:
        mine = [e for e in entries if e["entity_id"] == str(account)]
        return [e for e in mine if "refused" in str(e["action"])]

    audited = refusals_of(flooder)
    assert budget.BURST <= len(audited) <= budget.BURST + budget.RATE * elapsed + 1
    assert refusals_of(other)
    admin = await ops.headers("admin")
    metrics = (await client.get("/metrics", headers=admin)).text
    unaudited = flood - len(audited)
    assert (
        f'accessd_rejected_requests_total{{reason="reader_not_bound_unaudited"}} {unaudited}.0'
        in metrics
    )
