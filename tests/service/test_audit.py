"""The hash-chained audit log: every write lands in it, and tampering is found and named."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.models import AuditEntry, AuditHead
from accessd.services import audit
from accessd.services.audit import entry_hash
from tests.conftest import PASSWORD, Operators
from tests.helpers import TODAY, act, adjudicate, make_person, ok, problem, sponsor

Entry = dict[str, Any]


async def log(client: httpx.AsyncClient, headers: dict[str, str], **filters: Any) -> list[Entry]:
    """The whole audit log (or the part matching `filters`), following the pages."""
    out: list[Entry] = []
    after = 0
    while True:
        page = ok(
            await client.get(
                "/v1/audit", params={"after": after, "limit": 7, **filters}, headers=headers
            )
        )
        out.extend(page["items"])
        if page["next_after"] is None:
            return out
        after = page["next_after"]


async def verify(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = ok(await client.get("/v1/audit/verify", headers=headers))
    return result


def one(entries: list[Entry], action: str, entity: str, entity_id: object) -> Entry:
    found = [
        e
        for e in entries
        if e["action"] == action and e["entity"] == entity and e["entity_id"] == str(entity_id)
    ]
    assert len(found) == 1, (action, entity, entity_id, [e["action"] for e in entries])
    return found[0]


async def test_every_kind_of_write_is_recorded_with_actor_action_and_entity(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    auditor = await ops.headers("auditor")
    admin = await ops.headers("admin")
    sponsor_h = await ops.headers("sponsor")
    registrar = await ops.headers("registrar")
    adjudicator = await ops.headers("adjudicator")
    issuer = await ops.headers("issuer")
    officer = await ops.headers("security_officer")
    fm = await ops.headers("facility_manager")
    names = {
        h["Authorization"]: ok(await client.get("/v1/auth/me", headers=h))["username"]
        for h in (admin, sponsor_h, registrar, adjudicator, issuer, officer, fm)
    }

    def actor(h: dict[str, str]) -> str:
        return f"operator:{names[h['Authorization']]}"

    # People and their security records.
    person = await make_person(client, sponsor_h, external_id="E-100")
    pid = person["id"]
    ok(
        await client.patch(
            f"/v1/people/{pid}",
            json={"organization": "Facilities"},
            headers={**registrar, "If-Match": '"1"'},
        )
    )
    await adjudicate(client, adjudicator, pid)
    # Credentials: sponsorship, an identifier bound, and lifecycle transitions.
    cred = await sponsor(client, sponsor_h, pid)
    cid = cred["id"]
    ok(
        await client.patch(
            f"/v1/credentials/{cid}",
            json={"badge_number": "B-100"},
            headers={**registrar, "If-Match": f'"{cred["version"]}"'},
        )
    )
    ok(await act(client, registrar, cid, "enroll"))
    ok(await act(client, adjudicator, cid, "adjudicate"))
    ok(await act(client, issuer, cid, "issue"))
    ok(await act(client, registrar, cid, "activate"))
    ok(await act(client, officer, cid, "suspend", "investigating"))
    # Facilities: create, update, delete.
    fac = ok(
        await client.post(
            "/v1/facilities",
            json={"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": 3},
            headers=fm,
        ),
        201,
    )
    ok(
        await client.patch(
            f"/v1/facilities/{fac['id']}",
            json={"security_level": 4},
            headers={**fm, "If-Match": '"1"'},
        )
    )
    ok(await client.delete(f"/v1/facilities/{fac['id']}", headers={**fm, "If-Match": '"2"'}), 204)
    # Operators and tokens.
    made = ok(
        await client.post(
            "/v1/operators",
            json={"username": "newbie", "password": PASSWORD, "roles": ["sponsor"]},
            headers=admin,
        ),
        201,
    )
    login = ok(
        await client.post("/v1/auth/token", json={"username": "newbie", "password": PASSWORD})
    )
    ok(
        await client.post(
            "/v1/auth/logout", headers={"Authorization": f"Bearer {login['access_token']}"}
        ),
        204,
    )

    entries = await log(client, auditor)
    person_create = one(entries, "person.create", "person", pid)
    assert person_create["actor"] == actor(sponsor_h)
    assert person_create["data"]["external_id"] == "E-100"
    upd = one(entries, "person.update", "person", pid)
    assert upd["actor"] == actor(registrar)
    assert upd["data"]["changes"] == {"organization": ["", "Facilities"]}
    sec = one(entries, "security.update", "person", pid)
    assert sec["actor"] == actor(adjudicator)
    assert sec["data"]["changes"]["adjudication"] == ["pending", "favorable"]
    assert one(entries, "credential.sponsor", "credential", cid)["actor"] == actor(sponsor_h)
    bound = one(entries, "credential.update", "credential", cid)
    assert bound["data"]["changes"]["badge_number"] == [None, "B-100"]
    for action, who, frm, to in (
        ("enroll", registrar, "requested", "enrolled"),
        ("adjudicate", adjudicator, "enrolled", "adjudicated"),
        ("issue", issuer, "adjudicated", "issued"),
        ("activate", registrar, "issued", "active"),
        ("suspend", officer, "active", "suspended"),
    ):
        e = one(entries, f"credential.{action}", "credential", cid)
        assert e["actor"] == actor(who), action
        assert (e["data"]["from"], e["data"]["to"]) == (frm, to), action
    assert (
        one(entries, "credential.suspend", "credential", cid)["data"]["reason"] == "investigating"
    )
    fac_create = one(entries, "facility.create", "facility", fac["id"])
    assert fac_create["actor"] == actor(fm) and fac_create["data"]["code"] == "HQ"
    assert one(entries, "facility.update", "facility", fac["id"])["data"]["changes"] == {
        "security_level": [3, 4]
    }
    assert one(entries, "facility.delete", "facility", fac["id"])["actor"] == actor(fm)
    op_create = one(entries, "operator.create", "operator", made["id"])
    assert op_create["actor"] == actor(admin) and op_create["data"]["roles"] == ["sponsor"]
    issued = [
        e for e in entries if e["action"] == "token.issue" and e["entity_id"] == str(made["id"])
    ]
    assert len(issued) == 1 and issued[0]["actor"] == "operator:newbie"
    # Logging out is recorded under the same name as everything else the operator does.
    assert one(entries, "token.revoke", "operator", made["id"])["actor"] == "operator:newbie"
    # Secrets never reach the log: not the password, not the bearer token.
    dump = json.dumps(entries)
    assert PASSWORD not in dump and login["access_token"] not in dump
    # The chain over all of it is intact, and entries are numbered 1..n without a gap.
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    for prev, cur in itertools.pairwise(entries):
        assert cur["prev_hash"] == prev["hash"]
    assert await verify(client, auditor) == {
        "ok": True,
        "entries": len(entries),
        "first_broken_seq": None,
        "problem": None,
    }


async def test_audit_list_filters_by_entity_and_actor(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    auditor = await ops.headers("auditor")
    sponsor_h = await ops.headers("sponsor")
    a = await make_person(client, sponsor_h)
    await make_person(client, sponsor_h)
    me = ok(await client.get("/v1/auth/me", headers=sponsor_h))["username"]
    only_a = await log(client, auditor, entity="person", entity_id=str(a["id"]))
    assert [e["action"] for e in only_a] == ["person.create"]
    by_sponsor = await log(client, auditor, actor=f"operator:{me}")
    # The fixture's token for this operator, then the two people.
    assert [e["action"] for e in by_sponsor] == ["token.issue", "person.create", "person.create"]


async def test_a_refused_write_leaves_no_entry_and_an_intact_chain(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    auditor = await ops.headers("auditor")
    fm = await ops.headers("facility_manager")
    body = {"code": "HQ", "name": "HQ", "timezone": "UTC", "security_level": 3}
    ok(await client.post("/v1/facilities", json=body, headers=fm), 201)
    before = await log(client, auditor)
    problem(await client.post("/v1/facilities", json=body, headers=fm), 409, "duplicate")
    problem(
        await client.patch(
            "/v1/facilities/1", json={"name": "x"}, headers={**fm, "If-Match": '"9"'}
        ),
        412,
    )
    assert await log(client, auditor) == before
    # The head did not move either: the next write continues the chain seamlessly.
    ok(await client.post("/v1/facilities", json={**body, "code": "B2"}, headers=fm), 201)
    assert (await verify(client, auditor))["ok"] is True


async def test_twenty_concurrent_writes_leave_a_contiguous_intact_chain(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    auditor = await ops.headers("auditor")
    registrar = await ops.headers("registrar")
    start = len(await log(client, auditor))
    created = await asyncio.gather(
        *(make_person(client, registrar, external_id=f"C-{i}") for i in range(20))
    )
    entries = await log(client, auditor)
    assert [e["seq"] for e in entries] == list(range(1, start + 21))
    creates = [e for e in entries if e["action"] == "person.create"]
    assert sorted(e["entity_id"] for e in creates) == sorted(str(p["id"]) for p in created)
    result = await verify(client, auditor)
    assert result["ok"] is True and result["entries"] == start + 20


# --- tampering ---------------------------------------------------------------------------


async def drop_append_only_triggers(engine: AsyncEngine) -> None:
    """What a DBA with enough rights can do; the hash chain is the defence left."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            await conn.execute(text("DROP TRIGGER audit_log_no_update"))
            await conn.execute(text("DROP TRIGGER audit_log_no_delete"))


@pytest.fixture
async def chain(client: httpx.AsyncClient, ops: Operators) -> dict[str, Any]:
    """Ten people created: an audit log of a dozen entries to tamper with."""
    auditor = await ops.headers("auditor")
    sponsor_h = await ops.headers("sponsor")
    for i in range(10):
        await make_person(client, sponsor_h, external_id=f"T-{i}")
    entries = await log(client, auditor)
    assert len(entries) >= 12
    assert (await verify(client, auditor))["ok"] is True
    return {"auditor": auditor, "last": entries[-1]["seq"], "entries": entries}


async def run_cli(db_url: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "accessd",
        "--database-url",
        db_url,
        "audit",
        "verify",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_altered_entry_is_named(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
    db_url: str,
) -> None:
    victim = chain["last"] - 4
    await drop_append_only_triggers(engine)
    async with sessions() as s:
        await s.execute(
            update(AuditEntry)
            .where(AuditEntry.seq == victim)
            .values(data={"given_name": "Mallory", "family_name": "Doe"})
        )
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert result["ok"] is False
    assert result["first_broken_seq"] == victim
    assert "altered" in result["problem"]
    assert result["entries"] == victim - 1
    code, _, err = await run_cli(db_url)
    assert code == 1
    assert f"BROKEN at entry {victim}:" in err


async def test_altered_actor_is_named_too(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
) -> None:
    victim = chain["last"] - 1
    await drop_append_only_triggers(engine)
    async with sessions() as s:
        await s.execute(
            update(AuditEntry).where(AuditEntry.seq == victim).values(actor="operator:nobody")
        )
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert (result["ok"], result["first_broken_seq"]) == (False, victim)


async def test_deleted_middle_entry_is_named_missing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
    db_url: str,
) -> None:
    victim = chain["last"] - 5
    await drop_append_only_triggers(engine)
    async with sessions() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq == victim))
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert result["ok"] is False
    assert result["first_broken_seq"] == victim
    assert result["problem"] == f"entry {victim} is missing"
    code, _, err = await run_cli(db_url)
    assert code == 1 and f"BROKEN at entry {victim}:" in err


async def test_deleted_first_entry_is_named_missing(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
) -> None:
    await drop_append_only_triggers(engine)
    async with sessions() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq == 1))
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert (result["ok"], result["first_broken_seq"]) == (False, 1)


async def test_truncated_tail_is_detected_by_the_head(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
    db_url: str,
) -> None:
    last = chain["last"]
    await drop_append_only_triggers(engine)
    async with sessions() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq > last - 3))
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert result["ok"] is False
    # The first entry the head says exists but the log lacks.
    assert result["first_broken_seq"] == last - 2
    assert f"names entry {last}" in result["problem"]
    code, _, err = await run_cli(db_url)
    assert code == 1 and f"BROKEN at entry {last - 2}:" in err


async def _rehash(sessions: async_sessionmaker[AsyncSession], seq: int, data: Entry) -> None:
    """Alters an entry and recomputes its own hash, as a careful forger would."""
    async with sessions() as s:
        row = await s.scalar(select(AuditEntry).where(AuditEntry.seq == seq))
        assert row is not None
        digest = entry_hash(
            row.prev_hash, row.seq, row.at, row.actor, row.action, row.entity, row.entity_id, data
        )
        await s.execute(
            update(AuditEntry).where(AuditEntry.seq == seq).values(data=data, hash=digest)
        )
        await s.commit()


async def test_rehashed_entry_breaks_the_link_of_the_next(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
    db_url: str,
) -> None:
    victim = chain["last"] - 3
    await drop_append_only_triggers(engine)
    await _rehash(sessions, victim, {"given_name": "Mallory"})
    result = await verify(client, chain["auditor"])
    assert result["ok"] is False
    assert result["first_broken_seq"] == victim + 1
    assert result["problem"] == f"entry {victim + 1} does not link to entry {victim}"
    code, _, err = await run_cli(db_url)
    assert code == 1 and f"BROKEN at entry {victim + 1}:" in err


async def test_rehashed_last_entry_is_named_by_the_head(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
) -> None:
    """No next entry links to the last one; the head's hash is what catches it."""
    last = chain["last"]
    await drop_append_only_triggers(engine)
    await _rehash(sessions, last, {"given_name": "Mallory"})
    result = await verify(client, chain["auditor"])
    assert (result["ok"], result["first_broken_seq"]) == (False, last)


async def test_forged_entry_after_the_head_is_named(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    chain: dict[str, Any],
) -> None:
    """An INSERT needs no dropped trigger; a well-chained extra entry still shows."""
    last = chain["entries"][-1]
    seq = last["seq"] + 1
    async with sessions() as s:
        at = await s.scalar(select(AuditEntry.at).where(AuditEntry.seq == last["seq"]))
        assert at is not None
        at += timedelta(seconds=1)
        data: Entry = {"given_name": "Ghost"}
        s.add(
            AuditEntry(
                seq=seq,
                at=at,
                actor="operator:ghost",
                action="person.create",
                entity="person",
                entity_id="999",
                data=data,
                prev_hash=last["hash"],
                hash=entry_hash(
                    last["hash"], seq, at, "operator:ghost", "person.create", "person", "999", data
                ),
            )
        )
        await s.commit()
    result = await verify(client, chain["auditor"])
    assert (result["ok"], result["first_broken_seq"]) == (False, seq)


async def test_cli_exits_0_on_an_intact_chain(chain: dict[str, Any], db_url: str) -> None:
    code, out, err = await run_cli(db_url)
    assert code == 0, err
    assert f"intact: {len(chain['entries'])} entries" in out


async def test_append_only_triggers_refuse_update_and_delete(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], chain: dict[str, Any]
) -> None:
    victim = chain["last"] - 1
    for stmt in (
        update(AuditEntry).where(AuditEntry.seq == victim).values(actor="operator:x"),
        delete(AuditEntry).where(AuditEntry.seq == victim),
        delete(AuditEntry),
    ):
        async with sessions() as s:
            with pytest.raises(DBAPIError, match="append-only"):
                await s.execute(stmt)
            await s.rollback()
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text("TRUNCATE audit_log"))
    async with sessions() as s:
        rows = (await s.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
        assert [r.seq for r in rows] == [e["seq"] for e in chain["entries"]]
        assert rows[victim - 1].actor == chain["entries"][victim - 1]["actor"]
        head = await s.get(AuditHead, 1)
        assert head is not None and head.seq == chain["last"]


async def _active_credential(client: httpx.AsyncClient, staff: dict[str, dict[str, str]]) -> Entry:
    person = await make_person(client, staff["registrar"])
    await adjudicate(client, staff["adjudicator"], person["id"])
    cred = await sponsor(client, staff["sponsor"], person["id"])
    for action, who in (
        ("enroll", "registrar"),
        ("adjudicate", "adjudicator"),
        ("issue", "issuer"),
        ("activate", "registrar"),
    ):
        cred = ok(await act(client, staff[who], cred["id"], action))
    assert cred["state"] == "active"
    return cred


async def test_a_suspension_racing_a_lifecycle_action_does_not_deadlock(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    """An unfavorable adjudication locks the security record, then the person's credentials;
    a lifecycle action or a PATCH locks a credential. Neither may wait on the audit chain
    while holding a row the other needs (on PostgreSQL that was a deadlock, hence a 500)."""
    roles = ("sponsor", "registrar", "adjudicator", "issuer", "security_officer")
    staff = {r: await ops.headers(r) for r in roles}
    outcomes: list[tuple[int, int]] = []
    for i in range(8):
        cred = await _active_credential(client, staff)
        person_id = cred["person_id"]
        sec = ok(await client.get(f"/v1/people/{person_id}/security", headers=staff["adjudicator"]))
        unfavorable = client.patch(
            f"/v1/people/{person_id}/security",
            json={"adjudication": "unfavorable"},
            headers={**staff["adjudicator"], "If-Match": f'"{sec["version"]}"'},
        )
        if i % 2:
            other = act(client, staff["security_officer"], cred["id"], "report_lost")
        else:
            other = client.patch(
                f"/v1/credentials/{cred['id']}",
                json={"valid_until": (TODAY + timedelta(days=30)).isoformat()},
                headers={**staff["issuer"], "If-Match": f'"{cred["version"]}"'},
            )
        first, second = await asyncio.gather(unfavorable, other)
        outcomes.append((first.status_code, second.status_code))
        assert first.status_code == 200, first.text
        # The action either went first, or found the credential suspended (409) or changed.
        assert second.status_code in (200, 409, 412), second.text
    auditor = await ops.headers("auditor")
    assert (await verify(client, auditor))["ok"] is True, outcomes


async def test_entries_follow_their_transaction_and_savepoints(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], ops: Operators
) -> None:
    """Entries join the chain at commit: rolled-back work leaves none, committed work all."""

    async def note(s: AsyncSession, action: str) -> None:
        await audit.record(s, actor="test", action=action, entity="test", entity_id=action)

    async with sessions() as s:
        await note(s, "kept")
        with pytest.raises(RuntimeError):
            async with s.begin_nested():
                await note(s, "savepoint-rolled-back")
                raise RuntimeError
        async with s.begin_nested():
            await note(s, "savepoint-released")
        await note(s, "after")
        await s.commit()
        await note(s, "transaction-rolled-back")
        await s.rollback()
        await note(s, "next-transaction")
        await s.commit()
    async with sessions() as s:
        await note(s, "never-committed")  # closed without a commit
    auditor = await ops.headers("auditor")
    entries = await log(client, auditor, actor="test")
    assert [e["action"] for e in entries] == [
        "kept",
        "savepoint-released",
        "after",
        "next-transaction",
    ]
    assert (await verify(client, auditor))["ok"] is True
