"""Where people are and who is waiting at which door: the state anti-passback, occupancy,
two-person and escort rules read. The engine reads it; the caller records each decision
into it. No clock: every method takes the time of the event.

What a decision does to presence is a `Change`, a plain record: the service stores each
one and applies other instances' changes to its own `Presence`, so every instance (and a
restarted one) sees where people are (accessd.decisions.presence)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime

from policies.decision import Decision, Reason

#: Longest any pending badge is kept, whatever the area's window.
_MAX_WINDOW_S = 600


@dataclass(frozen=True, slots=True)
class Pending:
    person_id: int
    at: datetime
    #: "visitor" waiting for an escort, "escort" waiting for a visitor, "first" of two.
    role: str


@dataclass(frozen=True, slots=True)
class Change:
    """What one decision (or an operator's forgiveness) did to presence."""

    at: datetime
    person_id: int
    door_id: int | None = None
    area_id: int | None = None
    reason: Reason = Reason.GRANTED
    granted: bool = False
    companions: tuple[int, ...] = ()
    may_escort: bool = False
    starts_free_access: bool = False
    local_day: date | None = None
    #: Operator forgiveness: the person's whereabouts are forgotten.
    forgiven: bool = False

    @classmethod
    def of(cls, decision: Decision, at: datetime, local_day: date | None) -> Change | None:
        """The decision's consequences for presence; None when it has none."""
        if decision.door_id is None or decision.person_id is None:
            return None
        if not decision.granted and decision.reason not in _WAITING:
            return None
        return cls(
            at=at,
            person_id=decision.person_id,
            door_id=decision.door_id,
            area_id=decision.area_id,
            reason=decision.reason,
            granted=decision.granted,
            companions=decision.companions,
            may_escort=decision.may_escort,
            starts_free_access=decision.starts_free_access,
            local_day=local_day,
        )


_WAITING = frozenset({Reason.AWAITING_ESCORT, Reason.AWAITING_SECOND_PERSON})


@dataclass
class Presence:
    #: person -> (area id or None for outside, when they got there)
    location: dict[int, tuple[int | None, datetime]] = field(default_factory=dict)
    occupants: dict[int, set[int]] = field(default_factory=dict)
    waiting: dict[int, deque[Pending]] = field(default_factory=dict)
    #: door -> local date on which a first person in started its free access
    free_access: dict[int, date] = field(default_factory=dict)
    #: person -> when an operator last forgave them: a move from elsewhere that is older
    #: (another instance's entry arriving after the forgiveness) must not undo it.
    forgiven_at: dict[int, datetime] = field(default_factory=dict)

    def where(self, person_id: int, now: datetime, reset_s: int) -> tuple[bool, int | None]:
        """(known, area): unknown when never seen or forgotten after `reset_s`."""
        entry = self.location.get(person_id)
        if entry is None:
            return False, None
        area, since = entry
        if reset_s and (now - since).total_seconds() > reset_s:
            return False, None
        return True, area

    def occupancy(self, area_id: int) -> int:
        return len(self.occupants.get(area_id, ()))

    def waiting_at(self, door_id: int, now: datetime, window_s: int) -> list[Pending]:
        queue = self.waiting.get(door_id)
        if not queue:
            return []
        return [p for p in queue if 0 <= (now - p.at).total_seconds() <= window_s]

    def forgive(self, person_id: int) -> None:
        """Operator forgiveness: forget where the person is (anti-passback reset)."""
        self.location.pop(person_id, None)
        for people in self.occupants.values():
            people.discard(person_id)

    def record(
        self, decision: Decision, at: datetime, local_day: date | None = None
    ) -> Change | None:
        """Applies a decision's consequences; returns them (None: it had none)."""
        change = Change.of(decision, at, local_day)
        if change is not None:
            self.apply(change)
        return change

    def apply(self, change: Change, *, late: bool = False) -> None:
        """Applies one change. ``late``: it comes from elsewhere (another instance, the
        store at start) and may be older than what is known here, which it must not undo."""
        person = change.person_id
        if change.forgiven:
            entry = self.location.get(person)
            if not (late and entry is not None and entry[1] > change.at):
                self.forgive(person)
                known = self.forgiven_at.get(person)
                if known is None or known < change.at:
                    self.forgiven_at[person] = change.at
            return
        door = change.door_id
        if door is None:
            return
        if change.reason is Reason.AWAITING_ESCORT:
            self._wait(door, Pending(person, change.at, "visitor"))
        elif change.reason is Reason.AWAITING_SECOND_PERSON:
            self._wait(door, Pending(person, change.at, "first"))
        if not change.granted:
            return
        if change.starts_free_access and change.local_day is not None:
            day_known = self.free_access.get(door)
            if day_known is None or day_known < change.local_day:
                self.free_access[door] = change.local_day
        if change.companions:
            queue = self.waiting.get(door)
            if queue:
                gone = set(change.companions)
                self.waiting[door] = deque(p for p in queue if p.person_id not in gone)
        for who in (person, *change.companions):
            if not (late and self._newer(who, change.at)):
                self._move(who, change.area_id, change.at)
        if change.may_escort and not change.companions:
            self._wait(door, Pending(person, change.at, "escort"))

    def _newer(self, person: int, at: datetime) -> bool:
        """Whether what is known of ``person`` is newer than ``at``: a place, or a
        forgiveness."""
        entry = self.location.get(person)
        if entry is not None and entry[1] > at:
            return True
        forgiven = self.forgiven_at.get(person)
        return forgiven is not None and forgiven > at

    def _wait(self, door: int, pending: Pending) -> None:
        queue = self.waiting.setdefault(door, deque())
        while queue and (pending.at - queue[0].at).total_seconds() > _MAX_WINDOW_S:
            queue.popleft()
        queue.append(pending)
        if len(queue) > 64:  # a door is not a queue of people; keep memory bounded
            queue.popleft()

    def _move(self, person: int, area: int | None, at: datetime) -> None:
        previous = self.location.get(person)
        if previous is not None and previous[0] is not None:
            self.occupants.get(previous[0], set()).discard(person)
        self.location[person] = (area, at)
        if area is not None:
            self.occupants.setdefault(area, set()).add(person)
