"""Continuous vetting, adjudication and separation take every card of a person out of use at
once, in one transaction, with one event for the decision caches after it commits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.errors import LifecycleRefused
from accessd.events import CredentialsRevoked, CredentialStateChanged
from accessd.services import credentials as credential_service
from accessd.services import people as people_service
from accessd.services.actors import Actor
from policies.lifecycle import Action
from tests.conftest import Operators, Recorder
from tests.helpers import act, adjudicate, ok, problem, sponsor
from tests.service.api.test_lifecycle_api import (
    Cast,
    Op,
    active_credential,
    cast_of,
    cleared_person,
    history,
    make_op,
    step,
)


@dataclass
class Wallet:
    """One person's credentials, one in each interesting state."""

    person_id: int
    active_piv: int
    issued_badge: int
    active_temporary: int
    requested: int
    adjudicated: int
    terminated: int
    already_suspended: int

    @property
    def in_hand(self) -> list[int]:
        return sorted([self.active_piv, self.issued_badge, self.active_temporary])

    @property
    def untouched(self) -> dict[int, str]:
        return {
            self.requested: "requested",
            self.adjudicated: "adjudicated",
            self.terminated: "terminated",
            self.already_suspended: "suspended",
        }


async def wallet(client: httpx.AsyncClient, c: Cast) -> Wallet:
    pid = await cleared_person(client, c)
    active_piv = await active_credential(client, c, pid)
    badge = (await sponsor(client, c.sponsor.headers, pid, kind="local_badge"))["id"]
    for action, op in (("enroll", c.registrar), ("adjudicate", c.adjudicator), ("issue", c.issuer)):
        await step(client, op, badge, action)
    temporary = (await sponsor(client, c.sponsor.headers, pid, kind="temporary", days=30))["id"]
    await step(client, c.issuer, temporary, "issue")
    await step(client, c.registrar, temporary, "activate")
    requested = (await sponsor(client, c.sponsor.headers, pid))["id"]
    adjudicated = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.registrar, adjudicated, "enroll")
    await step(client, c.adjudicator, adjudicated, "adjudicate")
    terminated = (await sponsor(client, c.sponsor.headers, pid))["id"]
    await step(client, c.officer, terminated, "terminate")
    already = await active_credential(client, c, pid)
    await step(client, c.officer, already, "suspend")
    return Wallet(pid, active_piv, badge, temporary, requested, adjudicated, terminated, already)


async def states(client: httpx.AsyncClient, headers: dict[str, str], pid: int) -> dict[int, str]:
    page = ok(await client.get("/v1/credentials", params={"person_id": pid}, headers=headers))
    return {x["id"]: x["state"] for x in page["items"]}


async def raise_alert(
    client: httpx.AsyncClient, op: Op, pid: int, *, suspends: bool, category: str = "criminal"
) -> dict[str, Any]:
    body = {"source": "CV feed", "category": category, "suspends_eligibility": suspends}
    result: dict[str, Any] = ok(
        await client.post(f"/v1/people/{pid}/alerts", json=body, headers=op.headers), 201
    )
    return result


async def resolve(
    client: httpx.AsyncClient, op: Op, alert_id: int, *, upheld: bool
) -> httpx.Response:
    return await client.post(
        f"/v1/alerts/{alert_id}/resolve",
        json={"upheld": upheld, "resolution": "reviewed"},
        headers=op.headers,
    )


async def eligibility_suspended(client: httpx.AsyncClient, op: Op, pid: int) -> bool:
    record = ok(await client.get(f"/v1/people/{pid}/security", headers=op.headers))
    return bool(record["eligibility_suspended"])


# --- an alert that suspends eligibility --------------------------------------------------


async def test_suspending_alert_suspends_every_card_in_hand_at_once(
    client: httpx.AsyncClient, ops: Operators, events: Recorder
) -> None:
    c = await cast_of(ops)
    w = await wallet(client, c)
    bystander = await cleared_person(client, c)
    bystander_card = await active_credential(client, c, bystander)
    before = {cid: len(await history(client, c.officer.headers, cid)) for cid in w.untouched}
    events.events.clear()

    alert = await raise_alert(client, c.officer, w.person_id, suspends=True)

    assert alert["status"] == "open" and alert["suspends_eligibility"] is True
    assert sorted(alert["suspended_credential_ids"]) == w.in_hand
    now = await states(client, c.officer.headers, w.person_id)
    assert {cid: now[cid] for cid in w.in_hand} == {cid: "suspended" for cid in w.in_hand}
    assert {cid: now[cid] for cid in w.untouched} == w.untouched
    assert await states(client, c.officer.headers, bystander) == {bystander_card: "active"}
    assert await eligibility_suspended(client, c.officer, w.person_id)

    was = {w.active_piv: "active", w.issued_badge: "issued", w.active_temporary: "active"}
    for cid in w.in_hand:
        last = (await history(client, c.officer.headers, cid))[-1]
        assert (last["action"], last["from_state"], last["to_state"], last["actor_id"]) == (
            "suspend",
            was[cid],
            "suspended",
            c.officer.id,
        )
        assert f"alert {alert['id']}" in last["reason"]
    for cid, count in before.items():
        assert len(await history(client, c.officer.headers, cid)) == count

    [revoked] = events.of(CredentialsRevoked)
    assert revoked.person_id == w.person_id
    assert sorted(revoked.credential_ids) == w.in_hand
    assert f"alert {alert['id']}" in revoked.reason
    changes = events.of(CredentialStateChanged)
    assert sorted(e.credential_id for e in changes) == w.in_hand
    assert all(e.to_state == "suspended" and e.usable is False for e in changes)


async def test_alert_that_does_not_suspend_eligibility_suspends_nothing(
    client: httpx.AsyncClient, ops: Operators, events: Recorder
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    card = await active_credential(client, c, pid)
    events.events.clear()

    alert = await raise_alert(client, c.officer, pid, suspends=False, category="foreign travel")

    assert alert["suspended_credential_ids"] == []
    assert await states(client, c.officer.headers, pid) == {card: "active"}
    assert not await eligibility_suspended(client, c.officer, pid)
    assert events.of(CredentialsRevoked) == [] and events.of(CredentialStateChanged) == []


async def test_nothing_is_reinstated_issued_or_activated_while_eligibility_is_suspended(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    w = await wallet(client, c)
    await raise_alert(client, c.officer, w.person_id, suspends=True)

    for cid in (*w.in_hand, w.already_suspended):
        problem(
            await act(client, c.officer.headers, cid, "reinstate"), 409, "eligibility_suspended"
        )
    problem(
        await act(client, c.issuer.headers, w.adjudicated, "issue"), 409, "eligibility_suspended"
    )
    # Revoking stays possible: a suspended eligibility never blocks taking a card away.
    assert (await step(client, c.officer, w.active_piv, "terminate"))["state"] == "terminated"


# --- resolving alerts --------------------------------------------------------------------


async def test_clearing_restores_eligibility_only_when_no_other_suspending_alert_is_open(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    card = await active_credential(client, c, pid)
    first = await raise_alert(client, c.officer, pid, suspends=True)
    second = await raise_alert(client, c.officer, pid, suspends=True, category="financial")
    assert second["suspended_credential_ids"] == []  # nothing left in hand to suspend
    await raise_alert(client, c.officer, pid, suspends=False, category="travel")

    cleared = ok(await resolve(client, c.officer, first["id"], upheld=False))
    assert cleared["status"] == "cleared" and cleared["resolved_at"] is not None
    assert await eligibility_suspended(client, c.officer, pid)
    problem(await act(client, c.officer.headers, card, "reinstate"), 409, "eligibility_suspended")

    ok(await resolve(client, c.officer, second["id"], upheld=False))
    # The open alert that never suspended eligibility does not hold it back.
    assert not await eligibility_suspended(client, c.officer, pid)
    # Restored eligibility does not reinstate anything by itself.
    assert await states(client, c.officer.headers, pid) == {card: "suspended"}
    assert (await step(client, c.officer, card, "reinstate", "cleared"))["state"] == "active"


async def test_upheld_alert_keeps_eligibility_suspended(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    card = await active_credential(client, c, pid)
    first = await raise_alert(client, c.officer, pid, suspends=True)

    upheld = ok(await resolve(client, c.officer, first["id"], upheld=True))
    assert upheld["status"] == "upheld"
    assert await eligibility_suspended(client, c.officer, pid)
    problem(await act(client, c.officer.headers, card, "reinstate"), 409, "eligibility_suspended")

    # Clearing a later alert must not lift what the upheld one decided.
    later = await raise_alert(client, c.officer, pid, suspends=True, category="financial")
    ok(await resolve(client, c.officer, later["id"], upheld=False))
    assert await eligibility_suspended(client, c.officer, pid)
    problem(await act(client, c.officer.headers, card, "reinstate"), 409, "eligibility_suspended")


async def test_an_alert_is_resolved_once(client: httpx.AsyncClient, ops: Operators) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    alert = await raise_alert(client, c.officer, pid, suspends=True)
    ok(await resolve(client, c.officer, alert["id"], upheld=False))

    problem(await resolve(client, c.officer, alert["id"], upheld=False), 409, "alert_closed")
    problem(await resolve(client, c.officer, alert["id"], upheld=True), 409, "alert_closed")
    problem(await resolve(client, c.officer, 999_999, upheld=False), 404)
    [listed] = ok(await client.get(f"/v1/people/{pid}/alerts", headers=c.officer.headers))
    assert listed["status"] == "cleared"


# --- adjudication and separation ---------------------------------------------------------


async def test_unfavorable_adjudication_suspends_every_card_in_hand(
    client: httpx.AsyncClient, ops: Operators, events: Recorder
) -> None:
    c = await cast_of(ops)
    w = await wallet(client, c)
    events.events.clear()

    await adjudicate(client, c.adjudicator.headers, w.person_id, "unfavorable")

    now = await states(client, c.officer.headers, w.person_id)
    assert {cid: now[cid] for cid in w.in_hand} == {cid: "suspended" for cid in w.in_hand}
    assert {cid: now[cid] for cid in w.untouched} == w.untouched
    for cid in w.in_hand:
        last = (await history(client, c.officer.headers, cid))[-1]
        assert (last["action"], last["actor_id"]) == ("suspend", c.adjudicator.id)
        assert "unfavorable" in last["reason"]
    [revoked] = events.of(CredentialsRevoked)
    assert sorted(revoked.credential_ids) == w.in_hand

    # No kind of card comes back while the adjudication is unfavorable, temporary ones included.
    for cid in w.in_hand:
        problem(
            await act(client, c.officer.headers, cid, "reinstate"),
            409,
            "adjudication_not_favorable",
        )
    # Saying "unfavorable" again changes nothing and revokes nothing again.
    await adjudicate(client, c.adjudicator.headers, w.person_id, "unfavorable")
    assert len(events.of(CredentialsRevoked)) == 1

    await adjudicate(client, c.adjudicator.headers, w.person_id, "favorable")
    assert (await states(client, c.officer.headers, w.person_id))[w.active_piv] == "suspended"
    assert (await step(client, c.officer, w.active_piv, "reinstate"))["state"] == "active"


async def test_separation_suspends_every_card_and_nothing_comes_back(
    client: httpx.AsyncClient, ops: Operators, events: Recorder
) -> None:
    c = await cast_of(ops)
    w = await wallet(client, c)
    events.events.clear()
    person = await client.get(f"/v1/people/{w.person_id}", headers=c.registrar.headers)
    separated = ok(
        await client.patch(
            f"/v1/people/{w.person_id}",
            json={"status": "separated"},
            headers={**c.registrar.headers, "If-Match": person.headers["etag"]},
        )
    )
    assert separated["status"] == "separated"

    now = await states(client, c.officer.headers, w.person_id)
    assert {cid: now[cid] for cid in w.in_hand} == {cid: "suspended" for cid in w.in_hand}
    assert {cid: now[cid] for cid in w.untouched} == w.untouched
    last = (await history(client, c.officer.headers, w.active_piv))[-1]
    assert (last["action"], last["actor_id"], last["reason"]) == (
        "suspend",
        c.registrar.id,
        "person separated",
    )
    [revoked] = events.of(CredentialsRevoked)
    assert sorted(revoked.credential_ids) == w.in_hand

    # Someone who has left gets no card back, nor a new one, nor one prepared earlier.
    problem(
        await act(client, c.officer.headers, w.active_piv, "reinstate"), 409, "person_separated"
    )
    problem(await act(client, c.issuer.headers, w.adjudicated, "issue"), 409, "person_separated")
    problem(await act(client, c.registrar.headers, w.requested, "enroll"), 409, "person_separated")
    body = {
        "person_id": w.person_id,
        "kind": "piv",
        "valid_from": "2026-01-01",
        "valid_until": "2027-01-01",
    }
    problem(
        await client.post("/v1/credentials", json=body, headers=c.sponsor.headers),
        409,
        "person_separated",
    )
    # …but every card can still be revoked.
    assert (await step(client, c.officer, w.adjudicated, "terminate"))["state"] == "terminated"
    assert (await step(client, c.issuer, w.issued_badge, "report_damaged"))["state"] == "damaged"


# --- one transaction ---------------------------------------------------------------------


async def test_a_rolled_back_alert_suspends_nothing_and_publishes_nothing(
    client: httpx.AsyncClient,
    ops: Operators,
    events: Recorder,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    c = await cast_of(ops)
    w = await wallet(client, c)
    officer = Actor(c.officer.id, "officer", frozenset({"security_officer"}))
    before = await states(client, c.officer.headers, w.person_id)
    events.events.clear()

    async with sessions() as s:
        _, suspended = await people_service.raise_alert(
            s,
            officer,
            w.person_id,
            source="CV feed",
            category="criminal",
            description="",
            suspends_eligibility=True,
        )
        assert sorted(suspended) == w.in_hand  # done inside the transaction…
        await s.rollback()  # …and undone with it
    assert events.events == []
    assert await states(client, c.officer.headers, w.person_id) == before
    assert not await eligibility_suspended(client, c.officer, w.person_id)
    assert ok(await client.get(f"/v1/people/{w.person_id}/alerts", headers=c.officer.headers)) == []
    for cid in w.in_hand:
        assert (await history(client, c.officer.headers, cid))[-1]["action"] != "suspend"

    async with sessions() as s:
        _, suspended = await people_service.raise_alert(
            s,
            officer,
            w.person_id,
            source="CV feed",
            category="criminal",
            description="",
            suspends_eligibility=True,
        )
        await s.flush()
        assert events.events == []  # staged until the commit
        await s.commit()
    [revoked] = events.of(CredentialsRevoked)
    assert sorted(revoked.credential_ids) == sorted(suspended) == w.in_hand
    now = await states(client, c.officer.headers, w.person_id)
    assert {cid: now[cid] for cid in w.in_hand} == {cid: "suspended" for cid in w.in_hand}


# --- nobody vets themselves --------------------------------------------------------------


async def test_nobody_adjudicates_or_clears_their_own_record(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    card = await active_credential(client, c, pid)
    me = await make_op(ops, "adjudicator", "security_officer", person_id=pid)
    alert = await raise_alert(client, c.officer, pid, suspends=True)

    problem(await resolve(client, me, alert["id"], upheld=False), 403, "self_dealing")
    record = await client.get(f"/v1/people/{pid}/security", headers=me.headers)
    problem(
        await client.patch(
            f"/v1/people/{pid}/security",
            json={"adjudication": "favorable", "eligibility": "top_secret"},
            headers={**me.headers, "If-Match": record.headers["etag"]},
        ),
        403,
        "self_dealing",
    )
    assert await eligibility_suspended(client, c.officer, pid)
    problem(await act(client, me.headers, card, "reinstate"), 409, "self_dealing")

    # Anyone else's alert is theirs to resolve.
    other = await cleared_person(client, c)
    theirs = await raise_alert(client, c.officer, other, suspends=True)
    assert ok(await resolve(client, me, theirs["id"], upheld=False))["status"] == "cleared"


# --- concurrent decisions ----------------------------------------------------------------
# Two sessions, one holding its transaction open while the other runs: on PostgreSQL a
# suspension must not miss a card that another transaction is issuing or reinstating.


def actor_of(op: Op, role: str) -> Actor:
    return Actor(op.id, role, frozenset({role}))


async def adjudicated_card(client: httpx.AsyncClient, c: Cast, pid: int) -> int:
    cid = int((await sponsor(client, c.sponsor.headers, pid))["id"])
    await step(client, c.registrar, cid, "enroll")
    await step(client, c.adjudicator, cid, "adjudicate")
    return cid


async def test_alert_raised_while_a_card_is_being_issued_still_suspends_it(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = await adjudicated_card(client, c, pid)

    async def vet() -> list[int]:
        async with sessions() as s:
            _, suspended = await people_service.raise_alert(
                s,
                actor_of(c.officer, "security_officer"),
                pid,
                source="CV feed",
                category="criminal",
                description="",
                suspends_eligibility=True,
            )
            await s.commit()
            return suspended

    async with sessions() as issuing:
        await credential_service.transition(
            issuing, actor_of(c.issuer, "issuer"), cid, Action.ISSUE, reason="race"
        )
        alert = asyncio.create_task(vet())
        await asyncio.sleep(0.3)  # the alert gets as far as it can while the issue is open
        await issuing.commit()
    assert await asyncio.wait_for(alert, 10) == [cid]
    assert (await states(client, c.officer.headers, pid))[cid] == "suspended"


async def test_card_issued_while_an_alert_is_being_raised_is_refused(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = await adjudicated_card(client, c, pid)

    async def issue() -> None:
        async with sessions() as s:
            await credential_service.transition(
                s, actor_of(c.issuer, "issuer"), cid, Action.ISSUE, reason="race"
            )
            await s.commit()

    async with sessions() as vetting:
        await people_service.raise_alert(
            vetting,
            actor_of(c.officer, "security_officer"),
            pid,
            source="CV feed",
            category="criminal",
            description="",
            suspends_eligibility=True,
        )
        issuing = asyncio.create_task(issue())
        await asyncio.sleep(0.3)
        await vetting.commit()
    with pytest.raises(LifecycleRefused) as refused:
        await asyncio.wait_for(issuing, 10)
    assert refused.value.code == "eligibility_suspended"
    assert (await states(client, c.officer.headers, pid))[cid] == "adjudicated"


async def test_card_reinstated_while_the_holder_is_being_separated_is_refused(
    client: httpx.AsyncClient, ops: Operators, sessions: async_sessionmaker[AsyncSession]
) -> None:
    c = await cast_of(ops)
    pid = await cleared_person(client, c)
    cid = await active_credential(client, c, pid)
    await step(client, c.officer, cid, "suspend")
    person = ok(await client.get(f"/v1/people/{pid}", headers=c.registrar.headers))

    async def reinstate() -> None:
        async with sessions() as s:
            await credential_service.transition(
                s, actor_of(c.officer, "security_officer"), cid, Action.REINSTATE, reason="race"
            )
            await s.commit()

    async with sessions() as separating:
        await people_service.update_person(
            separating,
            actor_of(c.registrar, "registrar"),
            pid,
            {"status": "separated"},
            person["version"],
        )
        reinstating = asyncio.create_task(reinstate())
        await asyncio.sleep(0.3)
        await separating.commit()
    with pytest.raises(LifecycleRefused) as refused:
        await asyncio.wait_for(reinstating, 10)
    assert refused.value.code == "person_separated"
    assert (await states(client, c.officer.headers, pid))[cid] == "suspended"
