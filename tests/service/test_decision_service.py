"""The decision path in the service, on both databases: the snapshot loads from the
database, a revocation is denied on the very next request, changes made by another process
arrive through the audit feed, and every decision is stored."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.decisions import loader
from accessd.decisions.service import DecisionService
from accessd.events import EventBus, PolicyChanged, ThreatLevelChanged
from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Area,
    DecisionEvent,
    Door,
    Facility,
    GroupMember,
    PersonGroup,
    Reader,
    SecurityRecord,
)
from accessd.services import audit, credentials, people
from accessd.services.actors import Actor
from policies.decision import AccessRequest, Reason
from policies.lifecycle import Action, CredentialKind
from policies.snapshot import IdKind, Snapshot
from policies.vocabulary import Mechanism, ThreatLevel

OFFICER = Actor(1004, "op1004", frozenset())
CAK = frozenset({Mechanism.PKI_CAK})
UUID = "00000000-0000-4000-8000-000000000001"


async def make_site(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """A facility with one controlled area, one door and reader, a level for a group, and
    one person in the group with an active PIV card."""
    async with sessions() as s:
        fac = Facility(code="HQ", name="HQ", timezone="America/New_York", security_level=3)
        s.add(fac)
        await s.flush()
        area = Area(facility_id=fac.id, name="Lobby", area_class="controlled")
        s.add(area)
        await s.flush()
        door = Door(area_id=area.id, name="Main")
        s.add(door)
        await s.flush()
        reader = Reader(door_id=door.id, name="Main in", direction="in")
        level = AccessLevel(name="Lobby always")
        group = PersonGroup(name="staff")
        s.add_all([reader, level, group])
        await s.flush()
        s.add_all(
            [
                AccessLevelDoor(level_id=level.id, door_id=door.id),
                AccessGrant(level_id=level.id, group_id=group.id),
            ]
        )
        person = await people.create_person(
            s,
            OFFICER,
            {"given_name": "Ada", "family_name": "Lovelace", "affiliation": "employee"},
            {"adjudication": "favorable"},
        )
        s.add(GroupMember(group_id=group.id, person_id=person.id))
        cred = await credentials.sponsor(
            s,
            Actor(1001, "sponsor", frozenset()),
            person_id=person.id,
            kind=CredentialKind.PIV,
            # From yesterday: New York's date lags UTC's for hours after midnight.
            valid_from=date.today() - timedelta(days=1),
            valid_until=date.today() + timedelta(days=365),
            identifiers={"card_uuid": UUID},
        )
        await s.flush()
        # Walk it to active as the lifecycle demands (operators 1002..1004 are other people).
        for action, op in (
            (Action.ENROLL, 1002),
            (Action.ADJUDICATE, 1003),
            (Action.ISSUE, 1004),
            (Action.ACTIVATE, 1004),
        ):
            await credentials.transition(
                s, Actor(op, f"op{op}", frozenset()), cred.id, action, reason="setup"
            )
        await s.commit()
        return {
            "reader": reader.id,
            "person": person.id,
            "credential": cred.id,
            "door": door.id,
            "group": group.id,
        }


@pytest.fixture
async def operators_for_setup(
    sessions: async_sessionmaker[AsyncSession], password_hash: str
) -> None:
    from accessd.models import Operator

    async with sessions() as s:
        for op_id in (1001, 1002, 1003, 1004):
            s.add(
                Operator(
                    id=op_id, username=f"op{op_id}", password_hash=password_hash, roles=["admin"]
                )
            )
        await s.commit()


@pytest.fixture
async def service(
    sessions: async_sessionmaker[AsyncSession], bus: EventBus, operators_for_setup: None
) -> DecisionService:
    return DecisionService(sessions, bus, poll_interval=3600)


def badge(ids: dict[str, int], when: datetime | None = None) -> AccessRequest:
    return AccessRequest(ids["reader"], when or datetime.now(UTC), IdKind.CARD_UUID, UUID, CAK)


async def test_loads_the_database_and_grants(
    service: DecisionService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_site(sessions)
    await service.start()
    try:
        d = service.decide(badge(ids))
        assert d.granted and d.person_id == ids["person"], d.trail
        assert any("Lobby always" in line for line in d.trail)
    finally:
        await service.stop()
    async with sessions() as s:
        stored = (await s.scalars(select(DecisionEvent))).all()
    assert [(e.granted, e.reason, e.door_id) for e in stored] == [(True, "granted", ids["door"])]
    assert stored[0].trail and stored[0].source == "api"


async def test_a_suspension_is_denied_on_the_very_next_request(
    service: DecisionService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_site(sessions)
    await service.start()
    try:
        assert service.decide(badge(ids)).granted
        async with sessions() as s:
            await credentials.transition(
                s, OFFICER, ids["credential"], Action.SUSPEND, reason="lost eligibility"
            )
            await s.commit()
        # No await in between: the bus applied it synchronously on commit.
        d = service.decide(badge(ids))
        assert d.reason is Reason.CREDENTIAL_NOT_ACTIVE
    finally:
        await service.stop()


async def test_a_vetting_alert_closes_every_door_at_once(
    service: DecisionService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_site(sessions)
    await service.start()
    try:
        async with sessions() as s:
            await people.raise_alert(
                s,
                OFFICER,
                ids["person"],
                source="CV",
                category="arrest",
                description="",
                suspends_eligibility=True,
            )
            await s.commit()
        assert not service.decide(badge(ids)).granted
        await service.refresh()
        assert service.snapshot.people[ids["person"]].eligibility_suspended
    finally:
        await service.stop()


async def test_changes_by_another_process_arrive_through_the_audit_feed(
    service: DecisionService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_site(sessions)
    await service.start()
    try:
        assert service.decide(badge(ids)).granted
        # Another process (no shared bus): removes the person from the group and audits it.
        other = async_sessionmaker(sessions.kw["bind"], expire_on_commit=False)
        async with other() as s:
            member = await s.get(GroupMember, (ids["group"], ids["person"]))
            await s.delete(member)
            await audit.record(
                s,
                actor="cli:other",
                action="group.remove_member",
                entity="person",
                entity_id=ids["person"],
                data={},
            )
            await s.commit()
        assert service.decide(badge(ids)).granted  # not seen yet
        assert await service.poll_feed() >= 1
        await service.refresh()
        d = service.decide(badge(ids))
        assert d.reason is Reason.NO_ACCESS_LEVEL
    finally:
        await service.stop()


async def test_eligibility_restored_elsewhere_is_picked_up(
    service: DecisionService, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_site(sessions)
    async with sessions() as s:
        record = await s.get(SecurityRecord, ids["person"])
        assert record is not None
        record.eligibility_suspended = True
        await s.commit()
    await service.start()
    try:
        assert service.decide(badge(ids)).reason is Reason.ELIGIBILITY_SUSPENDED
    finally:
        await service.stop()
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(DecisionEvent)) == 1


async def test_a_threat_level_raised_while_the_policy_reloads_is_not_undone_by_the_reload(
    service: DecisionService,
    sessions: async_sessionmaker[AsyncSession],
    bus: EventBus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = await make_site(sessions)
    await service.start()
    loaded, release = asyncio.Event(), asyncio.Event()
    load_policy = loader.load_policy

    async def slow_load(session: AsyncSession) -> Snapshot:
        # The rows are read before the threat level is raised, and handed over after.
        snapshot = await load_policy(session)
        loaded.set()
        await release.wait()
        return snapshot

    monkeypatch.setattr(loader, "load_policy", slow_load)
    try:
        facility = service.snapshot.doors[ids["door"]].facility_id
        bus.publish(PolicyChanged(scope="schedules"))
        await asyncio.wait_for(loaded.wait(), 10)
        bus.publish(ThreatLevelChanged(facility_id=facility, level="lockdown"))
        assert service.snapshot.facilities[facility].threat is ThreatLevel.LOCKDOWN
        release.set()
        await service.refresh()
        assert service.snapshot.facilities[facility].threat is ThreatLevel.LOCKDOWN
        assert not service.decide(badge(ids)).granted
    finally:
        release.set()
        await service.stop()
