"""Where people are and who is waiting at which door: the state anti-passback, occupancy,
two-person and escort rules read. The engine reads it; the caller records each decision
into it. No clock: every method takes the time of the event."""

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


@dataclass
class Presence:
    #: person -> (area id or None for outside, when they got there)
    location: dict[int, tuple[int | None, datetime]] = field(default_factory=dict)
    occupants: dict[int, set[int]] = field(default_factory=dict)
    waiting: dict[int, deque[Pending]] = field(default_factory=dict)
    #: door -> local date on which a first person in started its free access
    free_access: dict[int, date] = field(default_factory=dict)

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

    def record(self, decision: Decision, at: datetime, local_day: date | None = None) -> None:
        """Applies a decision's consequences."""
        door = decision.door_id
        if door is None or decision.person_id is None:
            return
        if decision.reason is Reason.AWAITING_ESCORT:
            self._wait(door, Pending(decision.person_id, at, "visitor"))
        elif decision.reason is Reason.AWAITING_SECOND_PERSON:
            self._wait(door, Pending(decision.person_id, at, "first"))
        if not decision.granted:
            return
        if decision.starts_free_access and local_day is not None:
            self.free_access[door] = local_day
        passing = (decision.person_id, *decision.companions)
        if decision.companions:
            queue = self.waiting.get(door)
            if queue:
                gone = set(decision.companions)
                self.waiting[door] = deque(p for p in queue if p.person_id not in gone)
        for person in passing:
            self._move(person, decision.area_id, at)
        if decision.may_escort and not decision.companions:
            self._wait(door, Pending(decision.person_id, at, "escort"))

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
