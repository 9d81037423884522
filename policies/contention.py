"""Which shared presence a decision reads and changes, so that instances deciding at once
take turns where the answer depends on what the other just decided.

Every instance decides from its own copy of presence, kept current from the others' writes
within a poll (accessd.decisions.presence). Where one decision's outcome can hinge on another
instance's decision of the same moment, the two must be serialized, or both may grant: the
same badge entering a hard anti-passback area at two doors at once, two people taking the last
place of an area with an occupancy limit, the second person of a two-person rule or an escort
badging at the same door as the first. `turns` names the keys to serialize under; decisions
with none (the great majority) never wait for each other.
"""

from __future__ import annotations

import enum

from policies.decision import Decision, Reason
from policies.snapshot import Snapshot
from policies.vocabulary import AntiPassback, AreaClass


class Contended(enum.IntEnum):
    """What a key stands for: its value is the lock's namespace."""

    PERSON = 1  # where a person is (hard anti-passback)
    AREA = 2  # how many are inside (occupancy limit)
    DOOR = 3  # who waits at the door (two-person rule, escorts)


#: Denials that presence decided: another instance's concurrent decision could turn them.
PRESENCE_REASONS = frozenset(
    {
        Reason.ANTI_PASSBACK,
        Reason.OCCUPANCY_FULL,
        Reason.AWAITING_ESCORT,
        Reason.AWAITING_SECOND_PERSON,
    }
)


def turns(snapshot: Snapshot, decision: Decision) -> tuple[tuple[Contended, int], ...]:
    """The keys to take turns under before ``decision`` is final, sorted (so that two
    deciders taking several always take them in one order); () when presence played no
    part: the decision was refused before presence was read, or nothing shared applies.

    Soft anti-passback is not a key: it grants whatever presence says, only noting the
    violation, so a race changes a note, not a door."""
    if decision.door_id is None or decision.person_id is None:
        return ()
    if not decision.granted and decision.reason not in PRESENCE_REASONS:
        return ()
    door = snapshot.doors.get(decision.door_id)
    if door is None:
        return ()
    keys: set[tuple[Contended, int]] = set()
    inside = snapshot.areas.get(door.area_id)
    if inside is not None and inside.anti_passback is AntiPassback.HARD:
        keys.add((Contended.PERSON, decision.person_id))
    area = snapshot.areas.get(decision.area_id) if decision.area_id is not None else None
    if area is not None:
        if area.occupancy_limit is not None:
            keys.add((Contended.AREA, area.id))
        escorting = (
            area.escort_required
            and area.area_class is not AreaClass.UNRESTRICTED
            and (
                decision.reason is Reason.AWAITING_ESCORT
                or decision.may_escort
                or bool(decision.companions)
            )
        )
        if area.two_person_window_s or escorting:
            keys.add((Contended.DOOR, door.id))
    return tuple(sorted(keys))
