"""No sequence of API calls reaches a state the lifecycle forbids.

Hypothesis plays random runs of lifecycle actions by operators holding random roles, mixed
with adjudication changes, continuous-vetting alerts and their resolution, and separation,
through the real HTTP API on a real database. A reference model written here (not imported
from `policies`) predicts every answer; after each step the API must have accepted exactly what
the model allows, every credential must be in the model's state, and the invariants must hold.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.events import (
    CredentialsRevoked,
    CredentialStateChanged,
    DomainEvent,
    EventBus,
    session_info,
)
from tests.conftest import Operators, _pg_admin, _pg_url
from tests.helpers import TODAY

REPORTS = ("report_lost", "report_stolen", "report_damaged")
ACTIONS = (
    "enroll",
    "adjudicate",
    "issue",
    "activate",
    "suspend",
    "reinstate",
    "terminate",
    *REPORTS,
    "destroy",
)
LIVE = ("requested", "enrolled", "adjudicated", "issued", "active", "suspended")
IN_HAND = ("issued", "active", "suspended")
ENDS = ("terminated", "lost", "stolen", "damaged", "destroyed")
EVER_ISSUED = ("issued", "active", "suspended", "lost", "stolen", "damaged")

#: (state, action) -> next state: the FIPS 201-3 lifecycle as docs/architecture.md tells it.
TABLE: dict[tuple[str, str], str] = {
    ("requested", "enroll"): "enrolled",
    ("enrolled", "adjudicate"): "adjudicated",
    ("adjudicated", "issue"): "issued",
    ("issued", "activate"): "active",
    ("issued", "suspend"): "suspended",
    ("active", "suspend"): "suspended",
    ("suspended", "reinstate"): "active",
    **{(s, "terminate"): "terminated" for s in LIVE},
    **{(s, r): r.removeprefix("report_") for s in IN_HAND for r in REPORTS},
    **{(s, "destroy"): "destroyed" for s in ("terminated", "lost", "stolen", "damaged")},
}
TEMPORARY_TABLE = {**TABLE, ("requested", "issue"): "issued"}
#: The path a card usually takes (generation prefers it; the model does not care).
NEXT = {
    "requested": "enroll",
    "enrolled": "adjudicate",
    "adjudicated": "issue",
    "issued": "activate",
    "active": "suspend",
    "suspended": "reinstate",
}

#: The lifecycle actions each role may take, as the badge office assigns duties. (Sponsoring
#: is the sponsor's; the steps below that change a person use fixed operators: a registrar
#: edits people, an adjudicator the security record, an officer raises and resolves alerts.)
ROLE_CAN: dict[str, frozenset[str]] = {
    "sponsor": frozenset(),
    "registrar": frozenset({"enroll", "activate", *REPORTS}),
    "adjudicator": frozenset({"adjudicate"}),
    "issuer": frozenset({"issue", "activate", *REPORTS, "destroy"}),
    "security_officer": frozenset({"suspend", "reinstate", "terminate", *REPORTS, "destroy"}),
    "admin": frozenset(ACTIONS),
}
#: The operators every run shares, by name: single duties, risky combinations, an admin.
STAFF: dict[str, tuple[str, ...]] = {
    "sponsor": ("sponsor",),
    "registrar": ("registrar",),
    "adjudicator": ("adjudicator",),
    "issuer": ("issuer",),
    "officer": ("security_officer",),
    "sponsor+issuer": ("sponsor", "issuer"),
    "adjudicator+issuer": ("adjudicator", "issuer"),
    "admin": ("admin",),
}
SPONSORS = ("sponsor", "sponsor+issuer", "sponsor+issuer", "admin")
#: Each run also has an operator who is the cardholder, holding every card duty.
SELF_ROLES = ("registrar", "adjudicator", "issuer", "security_officer")
OPERATORS = (*STAFF, "self")
ROLES = {**STAFF, "self": SELF_ROLES}
#: The usual path, keyed by "is it a temporary badge".
WARM_UP = {
    False: ["enroll", "adjudicate", "issue", "activate"],
    True: ["issue", "activate"],
}
#: Who walks it: the plain role, or a combination separation of duties is about.
WARM_UP_BY = {
    "enroll": ["registrar", "admin"],
    "adjudicate": ["adjudicator", "adjudicator+issuer"],
    "issue": ["issuer", "sponsor+issuer", "adjudicator+issuer", "admin"],
    "activate": ["registrar", "issuer"],
}


def can(roles: tuple[str, ...], what: str) -> bool:
    return any(what in ROLE_CAN[r] for r in roles)


@dataclass
class Card:
    id: int
    kind: str
    sponsor: int
    state: str = "requested"
    registrar: int | None = None
    adjudicator: int | None = None
    issuer: int | None = None
    #: (action, from, to, actor id) for every transition, sponsorship first.
    history: list[tuple[str, str | None, str, int | None]] = field(default_factory=list)


@dataclass
class Alert:
    id: int
    suspends: bool
    status: str = "open"


@dataclass
class Person:
    """The reference model: what the lifecycle allows, written out independently."""

    id: int
    adjudication: str
    cards: dict[int, Card] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    eligibility_suspended: bool = False
    separated: bool = False
    #: The personnel-security record as the API last showed it, and the person's version.
    security: dict[str, Any] = field(default_factory=dict)
    person_version: int = 1

    def table(self, card: Card) -> dict[tuple[str, str], str]:
        return TEMPORARY_TABLE if card.kind == "temporary" else TABLE

    def refusals(self, card: Card, action: str, actor: int, is_self: bool) -> set[str]:
        """Every rule the action would break (empty when it is allowed)."""
        why: set[str] = set()
        if (card.state, action) not in self.table(card):
            why.add("illegal_transition")
        if is_self and action not in REPORTS:
            why.add("self_dealing")
        if self.separated and action in ("enroll", "adjudicate", "issue", "activate", "reinstate"):
            why.add("person_separated")
        if action == "adjudicate" and self.adjudication != "favorable":
            why.add("adjudication_not_favorable")
        if action in ("issue", "activate", "reinstate"):
            needs = card.kind != "temporary"
            if self.adjudication == "unfavorable" or (needs and self.adjudication != "favorable"):
                why.add("adjudication_not_favorable")
            if self.eligibility_suspended:
                why.add("eligibility_suspended")
        if action == "issue" and actor in (card.sponsor, card.adjudicator):
            why.add("separation_of_duties")
        return why

    def apply(self, card: Card, action: str, actor: int) -> tuple[str, str]:
        old, new = card.state, self.table(card)[(card.state, action)]
        card.state = new
        card.history.append((action, old, new, actor))
        if action == "enroll":
            card.registrar = actor
        elif action == "adjudicate":
            card.adjudicator = actor
        elif action == "issue":
            card.issuer = actor
        return old, new

    def suspend_in_hand(self, actor: int) -> list[tuple[int, str]]:
        """What one vetting decision does to every card that could open a door."""
        done = []
        for card in sorted(self.cards.values(), key=lambda c: c.id):
            if card.state in ("issued", "active"):
                done.append((card.id, card.state))
                card.history.append(("suspend", card.state, "suspended", actor))
                card.state = "suspended"
        return done


@dataclass
class World:
    """One database, app and client for the whole test; each example adds its own person."""

    client: httpx.AsyncClient
    ops: Operators
    staff: dict[str, tuple[int, dict[str, str]]]
    seen: list[DomainEvent]


@asynccontextmanager
async def world(
    backend: str, templates: dict[str, str], password_hash: str, tmp_path: Path
) -> AsyncIterator[World]:
    if backend == "sqlite":
        path = tmp_path / "property.db"
        shutil.copyfile(templates["sqlite"], path)
        url, dbname = f"sqlite+aiosqlite:///{path}", None
    else:
        dbname = f"accessd_p_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE DATABASE "{dbname}" TEMPLATE "{templates["postgresql"]}"')
        url = _pg_url(dbname)
    engine = make_engine(url)
    try:
        bus = EventBus()
        seen: list[DomainEvent] = []
        bus.subscribe(seen.append)
        app = create_app(Settings(database_url=url), engine=engine, bus=bus)
        sessions = make_sessionmaker(engine)
        sessions.configure(info=session_info(bus))
        ops = Operators(sessions, password_hash)
        staff = {name: await ops.make(*roles) for name, roles in STAFF.items()}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://accessd.test") as c:
            yield World(c, ops, staff, seen)
    finally:
        await engine.dispose()
        if dbname is not None:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def expect(response: httpx.Response, status: int, codes: set[str] | None = None) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    if codes is not None:
        assert body["code"] in codes, (body, codes)
    return body


async def play(w: World, data: st.DataObject) -> None:
    c = w.client
    ids = {name: op_id for name, (op_id, _) in w.staff.items()}
    hdr = {name: headers for name, (_, headers) in w.staff.items()}

    # A person, their adjudication so far, and one or two sponsored cards.
    visitor = data.draw(st.booleans(), label="visitor")
    first = data.draw(st.sampled_from(["favorable", "favorable", "pending"]), label="adjudication")
    person = expect(
        await c.post(
            "/v1/people",
            json={
                "given_name": "Pat",
                "family_name": "Model",
                "affiliation": "visitor" if visitor else "employee",
            },
            headers=hdr["sponsor"],
        ),
        201,
    )
    m = Person(person["id"], "pending", person_version=person["version"])
    if first != "pending":
        await set_adjudication(w, m, first, hdr, ids)
    self_id, self_headers = await w.ops.make(*SELF_ROLES, person_id=m.id)
    ids["self"], hdr["self"] = self_id, self_headers

    kinds = (
        st.just("temporary") if visitor else st.sampled_from(["piv", "local_badge", "temporary"])
    )
    for _ in range(data.draw(st.integers(1, 2), label="cards")):
        kind = data.draw(kinds, label="kind")
        by = data.draw(st.sampled_from(SPONSORS), label="sponsored by")
        body = {
            "person_id": m.id,
            "kind": kind,
            "valid_from": TODAY.isoformat(),
            "valid_until": (TODAY + timedelta(days=90)).isoformat(),
        }
        made = expect(await c.post("/v1/credentials", json=body, headers=hdr[by]), 201)
        m.cards[made["id"]] = Card(made["id"], kind, ids[by])
        m.cards[made["id"]].history.append(("sponsor", None, "requested", ids[by]))
    w.seen.clear()

    # Warm-up: each card walks part of the usual path by the usual operators (checked like any
    # other step), so the random steps below start with cards in hand more often than not.
    for card in list(m.cards.values()):
        path = WARM_UP[card.kind == "temporary"]
        depth = data.draw(st.sampled_from([len(path), len(path), 2, 1, 0]), label="warm-up")
        for action in path[:depth]:
            # The card's own sponsor or adjudicator, where they could, tries to issue it too.
            own = [o for o in WARM_UP_BY[action] if ids[o] in (card.sponsor, card.adjudicator)]
            who = data.draw(st.sampled_from(WARM_UP_BY[action] + own), label=action)
            await act(w, m, data, ids, hdr, -1, forced=(card, action, who))
        await check_invariants(w, m, hdr, security_may_change=False)

    # Mostly card actions, so cards are in hand by the time vetting strikes.
    kinds_of_step = ["act"] * 8 + [
        "adjudication",
        "alert",
        "alert",
        "resolve",
        "resolve",
        "status",
    ]
    for n in range(data.draw(st.integers(10, 32), label="steps")):
        what = data.draw(st.sampled_from(kinds_of_step), label=f"step {n}")
        if what == "act":
            await act(w, m, data, ids, hdr, n)
        elif what == "adjudication":
            value = data.draw(
                st.sampled_from(["favorable", "favorable", "unfavorable", "pending"]),
                label="adjudication",
            )
            await set_adjudication(w, m, value, hdr, ids)
        elif what == "alert":
            await raise_alert(w, m, data.draw(st.booleans(), label="suspends"), hdr, ids)
        elif what == "resolve" and m.alerts:
            # Mostly an open one; sometimes one already closed, which must be refused.
            open_ = [a for a in m.alerts if a.status == "open"]
            alerts = (
                st.sampled_from(open_) | st.sampled_from(m.alerts)
                if open_
                else st.sampled_from(m.alerts)
            )
            alert = data.draw(alerts, label="alert")
            await resolve(w, m, alert, data.draw(st.booleans(), label="upheld"), hdr)
        elif what == "status":
            # Usually the other status than now; sometimes the same again (a no-op).
            again = data.draw(st.integers(0, 3), label="same status") == 3
            await set_status(w, m, m.separated if again else not m.separated, hdr, ids)
        await check_invariants(w, m, hdr, security_may_change=what != "act")
    await check_history(w, m, hdr)


def draw_step(m: Person, data: st.DataObject, ids: dict[str, int]) -> tuple[Card, str, str]:
    """A card, an action and an operator: mostly the usual next step by someone entitled."""
    card = data.draw(st.sampled_from(sorted(m.cards.values(), key=lambda x: x.id)), label="card")
    # Mostly the next step of the usual path, so runs get deep into the lifecycle; often any
    # action the table allows from here; sometimes one it does not.
    legal = sorted(a for (s, a) in m.table(card) if s == card.state)
    usual = (
        "issue" if (card.kind, card.state) == ("temporary", "requested") else NEXT.get(card.state)
    )
    # Actions that end a card are drawn rarely, or few runs would get past them.
    lasting = [a for a in legal if TABLE.get((card.state, a)) not in ENDS]
    illegal = [a for a in ACTIONS if a not in legal]
    roll = data.draw(st.integers(0, 19), label="mode")
    if roll < 9:
        pool = [usual] if usual else []
    elif roll < 13:
        pool = lasting
    elif roll < 16:
        pool = legal
    else:
        pool = []
    if not pool:  # so an ended card mostly gets actions it must refuse
        # Those that would make a card usable from the wrong state matter most.
        risky = [a for a in illegal if a in ("issue", "activate", "reinstate")]
        pool = risky if risky and data.draw(st.booleans(), label="risky") else illegal
    action = data.draw(st.sampled_from(pool), label="action")
    capable = [o for o in OPERATORS if can(ROLES[o], action)]
    # Operators who already had a hand in this card come up often: that is where separation
    # of duties bites.
    involved = [
        o
        for o in capable
        if ids[o] in (card.sponsor, card.registrar, card.adjudicator, card.issuer)
    ]
    staff = [o for o in capable if o != "self"]
    roll = data.draw(st.integers(0, 19), label="who")
    if roll < 12 and staff:
        who = data.draw(st.sampled_from(staff), label="operator")
    elif roll < 16 and involved:
        who = data.draw(st.sampled_from(involved), label="operator")
    elif roll < 18:
        who = "self"
    else:
        who = data.draw(st.sampled_from(OPERATORS), label="operator")
    return card, action, who


async def act(
    w: World,
    m: Person,
    data: st.DataObject,
    ids: dict[str, int],
    hdr: dict[str, dict[str, str]],
    n: int,
    forced: tuple[Card, str, str] | None = None,
) -> None:
    if forced:
        card, action, who = forced
    else:
        card, action, who = draw_step(m, data, ids)
    actor = ids[who]

    if action == "issue":
        security_at_issue = expect(
            await w.client.get(f"/v1/people/{m.id}/security", headers=hdr["officer"]), 200
        )
    r = await w.client.post(
        f"/v1/credentials/{card.id}/{action}", json={"reason": f"step {n}"}, headers=hdr[who]
    )
    where = f"step {n}" if n >= 0 else "warm-up"
    note(f"{where}: {who} {action} card {card.id} ({card.kind}, {card.state}) -> {r.status_code}")
    if not can(ROLES[who], action):
        expect(r, 403, {"forbidden"})
        assert w.seen == []
        return
    why = m.refusals(card, action, actor, who == "self")
    if why:
        body = expect(r, 409, why)
        if "illegal_transition" in why:
            assert body["code"] == "illegal_transition"
        assert w.seen == [], "a refused action must publish nothing"
        return
    got = expect(r, 200)
    old, new = m.apply(card, action, actor)
    assert got["state"] == new
    if action == "issue":
        # The invariant, checked against what the API itself said just before issuing.
        assert security_at_issue["adjudication"] == "favorable" or (
            card.kind == "temporary" and security_at_issue["adjudication"] == "pending"
        )
        assert security_at_issue["eligibility_suspended"] is False
        assert got["issuer_id"] == actor
        assert actor not in (got["sponsor_id"], got["adjudicator_id"])
    expect_events(w, [(card.id, old, new)], revoked=False)


def expect_events(w: World, changes: list[tuple[int, str, str]], *, revoked: bool) -> None:
    state_changes = [
        (e.credential_id, e.from_state, e.to_state, e.usable)
        for e in w.seen
        if isinstance(e, CredentialStateChanged)
    ]
    assert sorted(state_changes) == sorted((cid, a, b, b == "active") for cid, a, b in changes)
    revocations = [sorted(e.credential_ids) for e in w.seen if isinstance(e, CredentialsRevoked)]
    assert revocations == ([sorted(cid for cid, _, _ in changes)] if revoked else [])
    w.seen.clear()


def suspended_events(w: World, done: list[tuple[int, str]]) -> None:
    expect_events(w, [(cid, old, "suspended") for cid, old in done], revoked=bool(done))


async def set_adjudication(
    w: World, m: Person, value: str, hdr: dict[str, dict[str, str]], ids: dict[str, int]
) -> None:
    url = f"/v1/people/{m.id}/security"
    if not m.security:
        m.security = expect(await w.client.get(url, headers=hdr["adjudicator"]), 200)
    # Card actions never touch this record, so the version last read is still current.
    etag = f'"{m.security["version"]}"'
    r = await w.client.patch(
        url, json={"adjudication": value}, headers={**hdr["adjudicator"], "If-Match": etag}
    )
    note(f"adjudication {m.adjudication} -> {value}: {r.status_code}")
    m.security = expect(r, 200)
    done = []
    if value != m.adjudication and value == "unfavorable":
        done = m.suspend_in_hand(ids["adjudicator"])
    m.adjudication = value
    suspended_events(w, done)


async def raise_alert(
    w: World, m: Person, suspends: bool, hdr: dict[str, dict[str, str]], ids: dict[str, int]
) -> None:
    r = await w.client.post(
        f"/v1/people/{m.id}/alerts",
        json={"source": "CV", "category": "model", "suspends_eligibility": suspends},
        headers=hdr["officer"],
    )
    note(f"alert (suspends={suspends}): {r.status_code}")
    body = expect(r, 201)
    m.alerts.append(Alert(body["id"], suspends))
    done = []
    if suspends:
        m.eligibility_suspended = True
        done = m.suspend_in_hand(ids["officer"])
    assert sorted(body["suspended_credential_ids"]) == sorted(cid for cid, _ in done)
    suspended_events(w, done)


async def resolve(
    w: World, m: Person, alert: Alert, upheld: bool, hdr: dict[str, dict[str, str]]
) -> None:
    r = await w.client.post(
        f"/v1/alerts/{alert.id}/resolve",
        json={"upheld": upheld, "resolution": "model"},
        headers=hdr["officer"],
    )
    note(f"resolve alert {alert.id} ({alert.status}, upheld={upheld}): {r.status_code}")
    if alert.status != "open":
        expect(r, 409, {"alert_closed"})
    else:
        assert expect(r, 200)["status"] == ("upheld" if upheld else "cleared")
        alert.status = "upheld" if upheld else "cleared"
        holding = [a for a in m.alerts if a.suspends and a.status in ("open", "upheld")]
        if alert.suspends and not upheld and not holding:
            m.eligibility_suspended = False
    expect_events(w, [], revoked=False)


async def set_status(
    w: World, m: Person, separate: bool, hdr: dict[str, dict[str, str]], ids: dict[str, int]
) -> None:
    value = "separated" if separate else "active"
    r = await w.client.patch(
        f"/v1/people/{m.id}",
        json={"status": value},
        headers={**hdr["registrar"], "If-Match": f'"{m.person_version}"'},
    )
    note(f"status -> {value}: {r.status_code}")
    person = expect(r, 200)
    assert person["status"] == value
    m.person_version = person["version"]
    done = []
    if separate and not m.separated:
        done = m.suspend_in_hand(ids["registrar"])
    m.separated = separate
    suspended_events(w, done)


async def check_invariants(
    w: World, m: Person, hdr: dict[str, dict[str, str]], *, security_may_change: bool
) -> None:
    page = expect(
        await w.client.get("/v1/credentials", params={"person_id": m.id}, headers=hdr["officer"]),
        200,
    )
    api = {x["id"]: x for x in page["items"]}
    assert set(api) == set(m.cards)
    for cid, card in m.cards.items():
        got = api[cid]
        assert got["state"] == card.state, (cid, got["state"], card.state)
        assert (
            got["sponsor_id"],
            got["registrar_id"],
            got["adjudicator_id"],
            got["issuer_id"],
        ) == (card.sponsor, card.registrar, card.adjudicator, card.issuer)
        # Invariants read from the API alone.
        if got["state"] in EVER_ISSUED or got["issuer_id"] is not None:
            assert got["issuer_id"] is not None
            assert got["issuer_id"] not in (got["sponsor_id"], got["adjudicator_id"])
    if security_may_change or not m.security:
        m.security = expect(
            await w.client.get(f"/v1/people/{m.id}/security", headers=hdr["officer"]), 200
        )
    security = m.security
    assert security["adjudication"] == m.adjudication
    assert security["eligibility_suspended"] is m.eligibility_suspended
    if (
        security["eligibility_suspended"]
        or security["adjudication"] == "unfavorable"
        or m.separated
    ):
        # Nothing of theirs may open a door, whatever the order of events was.
        assert not [x for x in api.values() if x["state"] in ("issued", "active")]


async def check_history(w: World, m: Person, hdr: dict[str, dict[str, str]]) -> None:
    for cid, card in m.cards.items():
        rows = expect(
            await w.client.get(f"/v1/credentials/{cid}/history", headers=hdr["officer"]), 200
        )
        got = [(r["action"], r["from_state"], r["to_state"], r["actor_id"]) for r in rows]
        assert got == card.history
        for before, after in itertools.pairwise(got):
            assert after[1] == before[2], "history must chain from state to state"
            assert before[2] != "destroyed", "nothing leaves destroyed"


def test_no_sequence_of_api_calls_leaves_the_lifecycle(
    backend: str, templates: dict[str, str], password_hash: str, tmp_path: Path
) -> None:
    with asyncio.Runner() as runner:
        cm = world(backend, templates, password_hash, tmp_path)
        w = runner.run(cm.__aenter__())
        try:

            @settings(
                max_examples=35,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            )
            @given(data=st.data())
            def run(data: st.DataObject) -> None:
                w.seen.clear()
                runner.run(play(w, data))

            run()
        finally:
            runner.run(cm.__aexit__(None, None, None))
