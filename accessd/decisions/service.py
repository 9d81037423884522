"""The decision path: one per process, shared by the HTTP API and the panel gateways.

The snapshot is loaded at start and then kept current two ways: the in-process event bus
(a revocation is applied synchronously, before the revoking request even returns) and the
audit log as a change feed, polled for writes made by other processes (the CLI, other
service instances).

Presence (where anti-passback thinks people are, occupancy, waits, first-person-in) is
decided from memory too, written through to the database and kept current from the
other instances' writes (accessd.decisions.presence).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.auth.token_cache import forget_everywhere
from accessd.db.outage import DatabaseHealth, is_unavailable
from accessd.decisions import loader
from accessd.decisions.presence import PresenceStore
from accessd.decisions.store import DecisionStore
from accessd.decisions.turns import Turns
from accessd.decisions.usage import mark_usage
from accessd.events import (
    CredentialsRevoked,
    CredentialStateChanged,
    DomainEvent,
    EventBus,
    PeopleImported,
    PersonChanged,
    PolicyChanged,
    ThreatLevelChanged,
)
from accessd.models import AuditEntry, AuditHead
from accessd.models.enums import Entity
from drivers.listeners import Listeners
from drivers.tasks import TaskSet
from policies.contention import Contended, turns
from policies.decision import AccessRequest, Decision
from policies.engine import evaluate
from policies.presence import Change, Presence
from policies.schedules import local_time
from policies.snapshot import Snapshot
from policies.vocabulary import ThreatLevel

log = logging.getLogger(__name__)

#: How often each instance deletes presence changes nobody will replay (a slice at a time).
COMPACT_EVERY_S = 60.0

#: What the audit feed does for each kind of record changed, every `Entity` in exactly one
#: set (tests/service/test_entities.py checks), so that a new kind is not missed:
#: a change to one of these reloads the policy part of the snapshot,
_POLICY_ENTITIES = frozenset(
    {
        Entity.FACILITY,
        Entity.AREA,
        Entity.DOOR,
        Entity.READER,
        Entity.PANEL,
        Entity.SCHEDULE,
        Entity.HOLIDAY_CALENDAR,
        Entity.GROUP,
        Entity.ACCESS_LEVEL,
        Entity.POLICY,
    }
)
#: to one of these reloads the one record named (and, for a person, their credentials),
_RECORD_ENTITIES = frozenset({Entity.CREDENTIAL, Entity.PERSON})
#: and to these nothing: operator accounts are not in the snapshot, and presence has its
#: own feed (accessd.decisions.presence), as it changes with every decision.
_IGNORED_ENTITIES = frozenset({Entity.OPERATOR, Entity.PRESENCE})
#: Policy changes that also touch every person (memberships and grants live on people);
#: "all" is the scope of PolicyChanged for a whole policy file applied.
_PEOPLE_ENTITIES = frozenset({Entity.GROUP, Entity.ACCESS_LEVEL, Entity.POLICY, "all"})


@dataclass(slots=True)
class _Turn:
    """One decision's turn (DecisionService.decide_in_turn): what it decided, and whether
    the decider gave up waiting for it."""

    decision: Decision | None = None
    change: Change | None = None
    error: Exception | None = None
    abandoned: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotChange:
    """What a refresh applied: people and credentials reloaded, and whether the policy."""

    people: frozenset[int]
    credentials: frozenset[int]
    policy: bool


class DecisionService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        *,
        poll_interval: float = 1.0,
        store: DecisionStore | None = None,
        presence_poll_interval: float = 0.1,
        usage_interval: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._poll_interval = poll_interval
        self.store = store or DecisionStore(sessions)
        self.snapshot = Snapshot()
        self.presence = Presence()
        self.presence_store = PresenceStore(sessions, self.presence)
        self.presence_store.health = self.store.health
        self.turns = Turns(sessions)
        self._presence_poll_interval = presence_poll_interval
        self._usage_interval = usage_interval
        self._feed_seq = 0
        self._pending_people: set[int] = set()
        self._pending_credentials: set[int] = set()
        self._pending_policy = False
        self._pending_all_people = False
        self._dirty = asyncio.Event()
        self._refreshing = asyncio.Lock()
        #: The events that came while a refresh loaded rows (None when none loads).
        self._arrived_during_load: list[DomainEvent] | None = None
        self._tasks = TaskSet("decision service", logger=log)
        self._unsubscribe: list[Callable[[], None]] = []
        self.decisions = 0
        self.build_seconds = 0.0
        self._changes: Listeners[[SnapshotChange]] = Listeners("snapshot change", logger=log)

    async def start(self) -> None:
        started = time.perf_counter()
        async with self._sessions() as session:
            # The feed position is read first: a change made while the snapshot loads is
            # applied again afterwards rather than missed.
            self._feed_seq = int(await session.scalar(select(AuditHead.seq)) or 0)
            self.snapshot = await loader.load_snapshot(session)
        self.build_seconds = time.perf_counter() - started
        replayed = await self.presence_store.load(datetime.now(UTC))
        log.info(
            "policy snapshot: %d people, %d credentials, %d doors in %.2f s",
            len(self.snapshot.people),
            len(self.snapshot.credentials),
            len(self.snapshot.doors),
            self.build_seconds,
        )
        log.info("presence: %d changes replayed", replayed)
        self._unsubscribe.append(self._bus.subscribe(self._on_event))
        self.store.start()
        self.presence_store.start()
        self._tasks = TaskSet("decision service", logger=log)
        self._tasks.spawn(self._apply_loop(), name="snapshot-updates")
        self._tasks.spawn(self._poll_loop(), name="audit-feed")
        self._tasks.spawn(self._presence_loop(), name="presence-feed")
        self._tasks.spawn(self._usage_loop(), name="decision-usage")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self._tasks.close()
        await self.store.stop()
        await self.presence_store.stop()

    @property
    def health(self) -> DatabaseHealth:
        """The view of the database its writers and feeds report to (one per process: the
        app hands its own in, so an outage is said once, not once per writer)."""
        return self.store.health

    @health.setter
    def health(self, value: DatabaseHealth) -> None:
        self.store.health = value
        self.presence_store.health = value

    def on_change(self, listener: Callable[[SnapshotChange], None]) -> Callable[[], None]:
        """``listener(SnapshotChange)`` after each batch of changes is applied to the snapshot
        (the panels' caches follow it); returns the function that removes it."""
        return self._changes.add(listener)

    def decide(
        self, request: AccessRequest, *, source: str = "api", request_id: str | None = None
    ) -> Decision:
        """Decides from memory and queues the decision's row (``request_id``: the panel's,
        which its access event names, so the row can say whether the door used it).

        From this instance's presence alone: where another instance may be deciding the
        same person, area or door at once, `decide_in_turn` is the one to call."""
        return self._record(
            evaluate(request, self.snapshot, self.presence), request, source, request_id
        )

    async def decide_in_turn(
        self, request: AccessRequest, *, source: str = "api", request_id: str | None = None
    ) -> Decision:
        """As `decide`, but a decision on contended presence (policies.contention: hard
        anti-passback, an occupancy limit, a two-person or escort door) is made again in a
        turn with the other instances (accessd.decisions.turns), so that two instances
        deciding the same badge at once do not both grant. Falls back to `decide` when the
        turn cannot be had in time or the database is away (counted in `turns.missed`)."""
        first = evaluate(request, self.snapshot, self.presence)
        keys = turns(self.snapshot, first) if self.turns.serializes else ()
        if keys and not self.health.available:
            self.turns.missed += 1
        if not keys or not self.health.available:
            # Nothing awaited since `first`: it is this instance's decision as it stands.
            return self._record(first, request, source, request_id)
        turn = _Turn()
        started = self.health.now()
        # Past twice the lock wait the panel has decided alone anyway; a database that hangs
        # must not hold the door, so the turn is waited for, not awaited to its end (it stays
        # in the task set and, given up on before it decided, decides nothing).
        task = self._tasks.spawn(self._take_turn(turn, keys, request), name="decision turn")
        await asyncio.wait({task}, timeout=self.turns.wait * 2)
        if task.done() and turn.error is None:
            self.health.succeeded(started)
            self.turns.taken += 1
            assert turn.decision is not None
            return self._stored(turn.decision, request, source, request_id)
        self.turns.missed += 1
        turn.abandoned = True
        if turn.error is not None:
            if is_unavailable(turn.error):
                self.health.failed("decision turns", turn.error)
            elif not _lock_timeout(turn.error):
                log.warning("a decision's turn failed (%s); decided alone", turn.error)
        if turn.decision is None:
            return self.decide(request, source=source, request_id=request_id)
        if turn.change is not None:
            # Decided in the turn but maybe not committed: written again it is applied
            # twice, which moves nobody anywhere new; not written it would be lost to the
            # others.
            self.presence_store.add(turn.change)
        return self._stored(turn.decision, request, source, request_id)

    async def _take_turn(
        self, turn: _Turn, keys: Sequence[tuple[Contended, int]], request: AccessRequest
    ) -> None:
        try:
            async with self.turns.turn(keys) as session:
                await self.presence_store.poll(session)
                if turn.abandoned:  # decided alone meanwhile: this must not decide it again
                    return
                turn.decision = evaluate(request, self.snapshot, self.presence)
                # Applied here before the commit, so a decision of this instance that waits
                # for the lock behind this one reads it (its poll skips this instance's rows).
                turn.change = self._presence_change(turn.decision, request)
                if turn.change is not None:
                    await self.presence_store.write(session, [turn.change])
        except Exception as exc:  # the database's or the lock's; the decider says which
            turn.error = exc

    def _record(
        self, decision: Decision, request: AccessRequest, source: str, request_id: str | None
    ) -> Decision:
        """Applies ``decision`` to presence (queuing the change for the others) and queues
        its row."""
        change = self._presence_change(decision, request)
        if change is not None:
            self.presence_store.add(change)
        return self._stored(decision, request, source, request_id)

    def _presence_change(self, decision: Decision, request: AccessRequest) -> Change | None:
        """Applies the decision to this instance's presence; the change, for the others."""
        day = None
        if decision.door_id is not None:
            facility = self.snapshot.facilities[self.snapshot.doors[decision.door_id].facility_id]
            day = local_time(request.at, facility.tz).day  # memoised per minute
        return self.presence.record(decision, request.at, day)

    def _stored(
        self, decision: Decision, request: AccessRequest, source: str, request_id: str | None
    ) -> Decision:
        self.store.add(decision, request, source, request_id)
        self.decisions += 1
        return decision

    def forgive(self, person_id: int, at: datetime) -> None:
        """Operator forgiveness (anti-passback reset), here and at every other instance."""
        change = Change(at=at, person_id=person_id, forgiven=True)
        self.presence.apply(change)
        self.presence_store.add(change)

    async def _presence_loop(self) -> None:
        compacted = time.monotonic()
        while True:
            await asyncio.sleep(self._presence_poll_interval)
            try:
                await self.presence_store.poll()
                if time.monotonic() - compacted >= COMPACT_EVERY_S:
                    compacted = time.monotonic()
                    await self.presence_store.compact(datetime.now(UTC))
            except Exception as exc:
                if is_unavailable(exc):
                    self.store.health.failed("presence feed", exc)
                else:
                    log.exception("reading the presence feed failed")

    async def mark_usage(self) -> int:
        """Marks stored decisions used or not by the access events that name them."""
        async with self._sessions() as session:
            return await mark_usage(session, datetime.now(UTC))

    async def _usage_loop(self) -> None:
        while True:
            await asyncio.sleep(self._usage_interval)
            try:
                await self.mark_usage()
            except Exception as exc:
                if is_unavailable(exc):
                    self.store.health.failed("decision usage", exc)
                else:
                    log.exception("marking decisions used failed")

    # -- keeping the snapshot current -------------------------------------------------------

    def _on_event(self, ev: DomainEvent) -> None:
        self._apply_at_once(ev)
        if self._arrived_during_load is not None:
            self._arrived_during_load.append(ev)
        if isinstance(ev, CredentialStateChanged):
            self._pending_credentials.add(ev.credential_id)
        elif isinstance(ev, CredentialsRevoked | PersonChanged):
            self._pending_people.add(ev.person_id)
        elif isinstance(ev, PeopleImported):
            self._pending_people.update(ev.person_ids)
            self._pending_credentials.update(ev.credential_ids)
        elif isinstance(ev, PolicyChanged):
            self._pending_policy = True
            self._pending_all_people |= ev.scope in _PEOPLE_ENTITIES
        self._dirty.set()

    def _apply_at_once(self, ev: DomainEvent) -> None:
        """What a change does to the snapshot synchronously: the very next request sees a
        suspension, a revocation or a new threat level, before any reload."""
        snap = self.snapshot
        if isinstance(ev, CredentialStateChanged):
            snap.set_credential_usable(ev.credential_id, ev.usable, ev.to_state)
        elif isinstance(ev, CredentialsRevoked):
            for cid in ev.credential_ids:
                snap.set_credential_usable(cid, False, "suspended")
        elif isinstance(ev, ThreatLevelChanged) and ev.facility_id in snap.facilities:
            snap.set_threat(ev.facility_id, ThreatLevel(ev.level))

    async def refresh(self) -> None:
        """Applies every pending change now (callers that must see their own write). Waits
        for a refresh already running, so what was pending before the call is applied when
        it returns."""
        async with self._refreshing:
            await self._refresh()

    async def _refresh(self) -> None:
        people, creds, policy = self._take_pending()
        all_people, self._pending_all_people = self._pending_all_people, False
        if not (people or creds or policy):
            return
        # A change committed while the rows load may be missing from them: what it did at
        # once is done again over the loaded rows, or a reload that began before a threat
        # level was raised would put the old level back until the next policy change.
        self._arrived_during_load = []
        try:
            async with self._sessions() as session:
                if policy and all_people:
                    # Memberships and grants live on the people: reload them with the policy.
                    fresh = await loader.load_policy_and_people(session)
                    self.snapshot.adopt_policy(fresh, people=True)
                elif policy:
                    self.snapshot.adopt_policy(await loader.load_policy(session))
                if people and not (policy and all_people):
                    await loader.reload_people(session, self.snapshot, people)
                if people:
                    await loader.reload_credentials_of(session, self.snapshot, people)
                if creds:
                    await loader.reload_credentials(session, self.snapshot, creds)
        except Exception:
            # Nothing is lost: the next attempt reloads all of it.
            self._pending_people |= people
            self._pending_credentials |= creds
            self._pending_policy |= policy
            self._pending_all_people |= all_people
            raise
        finally:
            arrived, self._arrived_during_load = self._arrived_during_load or [], None
            for ev in arrived:
                self._apply_at_once(ev)
        change = SnapshotChange(frozenset(people), frozenset(creds), policy)
        self._changes.emit(change)

    def _take_pending(self) -> tuple[set[int], set[int], bool]:
        people, self._pending_people = self._pending_people, set()
        creds, self._pending_credentials = self._pending_credentials, set()
        policy, self._pending_policy = self._pending_policy, False
        return people, creds, policy

    async def _apply_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh()
            except Exception as exc:
                if is_unavailable(exc):
                    self.store.health.failed("policy snapshot update", exc)
                else:
                    log.exception("updating the policy snapshot failed; retrying")
                await asyncio.sleep(self._poll_interval)
                self._dirty.set()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            started = self.store.health.now()
            try:
                await self.poll_feed()
                # The feed is read every poll interval: the outage's end is noticed here
                # even when nothing else is asking the database.
                self.store.health.succeeded(started)
            except Exception as exc:
                if is_unavailable(exc):
                    self.store.health.failed("audit feed", exc)
                else:
                    log.exception("reading the audit feed failed")

    async def poll_feed(self, limit: int = 10_000) -> int:
        """Queues reloads for what other processes changed; returns entries read."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AuditEntry.seq, AuditEntry.entity, AuditEntry.entity_id, AuditEntry.data)
                    .where(AuditEntry.seq > self._feed_seq)
                    .order_by(AuditEntry.seq)
                    .limit(limit)
                )
            ).all()
        for seq, entity, entity_id, data in rows:
            self._feed_seq = seq
            self._note(entity, entity_id, data)
        if rows:
            self._dirty.set()
        return len(rows)

    def _note(self, entity: str, entity_id: str, data: dict[str, object]) -> None:
        if entity in _POLICY_ENTITIES:
            self._pending_policy = True
            self._pending_all_people |= entity in _PEOPLE_ENTITIES
        elif entity == Entity.CREDENTIAL and entity_id.isdigit():
            self._pending_credentials.add(int(entity_id))
        elif entity == Entity.OPERATOR and entity_id.isdigit():
            # A token revoked or an account changed, here or on another instance: this
            # process's cached door-reader tokens of that operator are checked afresh, one
            # poll later rather than at their recheck time (accessd/auth/token_cache.py).
            forget_everywhere(operator_id=int(entity_id))
        elif entity == Entity.PERSON and entity_id.isdigit():
            self._pending_people.add(int(entity_id))
            ids = data.get("credential_ids")
            if isinstance(ids, list):
                self._pending_credentials.update(_ints(ids))


def _lock_timeout(error: BaseException) -> bool:
    """PostgreSQL's lock_not_available (55P03): another instance's turn outlasted the wait."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) == "55P03" or getattr(seen, "pgcode", None) == "55P03":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _ints(values: Iterable[object]) -> set[int]:
    return {v for v in values if isinstance(v, int)}
