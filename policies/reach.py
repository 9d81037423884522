"""Which areas each person can reach under a policy snapshot, and what a change of policy
does to that: who gains or loses which area.

A person reaches an area when one of their access levels (their own or their groups')
includes a door that leads into it (the area its `in` readers enter) and they meet the
area's folded requirements (eligibility, program read-ins). Time of day is not weighed:
a level's schedule counts as always open, so the answer is "at some time", not "now".
Doors that open for no badge reach nothing: locked doors, and doors without an `in` reader.
People who are not active, or whose eligibility is suspended, reach nothing (the engine
refuses them at every door). The threat level is not weighed either.

Areas are named `FACILITY/Area name`, so two snapshots whose ids differ (a policy applied
afresh) compare by what the areas are. Internally a set of areas is a bitmask over the
area names of the snapshots compared: a person's reach is the OR of their groups' and
levels' masks AND the mask of areas their clearance admits, a few integer operations
whoever the person is, and small enough to keep for 100,000 people. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from policies.snapshot import PersonPolicy, Snapshot
from policies.vocabulary import Direction, DoorMode, Eligibility

#: person id -> the areas (`FACILITY/Area name`) they can reach.
Reach = Mapping[int, frozenset[str]]
#: (person id, area) pairs.
Access = list[tuple[int, str]]

#: What reachability leaves out, for anyone who shows it.
NOT_WEIGHED = "at any time of day: schedules and threat levels are not weighed"


def area_names(snap: Snapshot) -> dict[int, str]:
    """area id -> `FACILITY/Area name`."""
    codes = {f.id: f.code for f in snap.facilities.values()}
    return {
        a.id: f"{codes.get(a.facility_id, a.facility_id)}/{a.name}" for a in snap.areas.values()
    }


class AreaBits:
    """A bit for each area name; sets of areas as int masks, decoded to names on demand."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(set(names))
        self.bit = {name: 1 << i for i, name in enumerate(self.names)}
        self._decoded: dict[int, frozenset[str]] = {0: frozenset()}

    def mask(self, names: Iterable[str]) -> int:
        out = 0
        for name in names:
            out |= self.bit[name]
        return out

    def decode(self, mask: int) -> frozenset[str]:
        hit = self._decoded.get(mask)
        if hit is None:
            hit = self._decoded[mask] = frozenset(_names_of(self.names, mask))
        return hit


def _names_of(names: list[str], mask: int) -> Iterator[str]:
    """The names of the set bits, in name order."""
    while mask:
        low = mask & -mask
        yield names[low.bit_length() - 1]
        mask ^= low


class _Reacher:
    """The reach of one snapshot's people as masks: their groups' levels (memoised per
    group set, which people share) OR their own levels, AND what their eligibility and
    read-ins admit (memoised per eligibility and programs)."""

    def __init__(self, snap: Snapshot, bits: AreaBits) -> None:
        self.snap = snap
        names = area_names(snap)
        entered = {r.door_id for r in snap.readers.values() if r.direction is Direction.IN}
        into = {
            d.id: bits.bit[names[d.area_id]]
            for d in snap.doors.values()
            if d.id in entered and d.mode is not DoorMode.LOCKED and d.area_id in names
        }
        self.levels: dict[int, int] = {}
        for lvl in snap.levels.values():
            mask = 0
            for door in lvl.doors:
                mask |= into.get(door, 0)
            self.levels[lvl.id] = mask
        self.gates = [
            (bits.bit[names[a.id]], a.min_eligibility.rank, a.programs) for a in snap.areas.values()
        ]
        self.by_groups: dict[frozenset[int], int] = {}
        self.admitted: dict[tuple[Eligibility, frozenset[str]], int] = {}

    def of(self, person: PersonPolicy) -> int:
        if not person.active or person.eligibility_suspended:
            return 0
        mask = self.by_groups.get(person.groups)
        if mask is None:
            mask = self.by_groups[person.groups] = self._of_levels(
                lv for g in person.groups for lv in self.snap.group_levels.get(g, ())
            )
        if person.levels:
            mask |= self._of_levels(person.levels)
        key = (person.eligibility, person.programs)
        admitted = self.admitted.get(key)
        if admitted is None:
            admitted = self.admitted[key] = self._admitting(person)
        return mask & admitted

    def _of_levels(self, levels: Iterable[int]) -> int:
        mask, get = 0, self.levels.get
        for level in levels:
            mask |= get(level, 0)
        return mask

    def _admitting(self, person: PersonPolicy) -> int:
        """Every area whose clearance and read-ins the person meets."""
        rank, programs, mask = person.eligibility.rank, person.programs, 0
        for bit, need, gate in self.gates:
            if rank >= need and gate <= programs:
                mask |= bit
        return mask


def _masks(snap: Snapshot, bits: AreaBits, people: Iterable[int] | None = None) -> dict[int, int]:
    r = _Reacher(snap, bits)
    ids = snap.people.keys() if people is None else people
    return {pid: r.of(snap.people[pid]) for pid in ids if pid in snap.people}


class _Named(Mapping[int, frozenset[str]]):
    """Person id -> area names, decoded from masks only for the people looked up."""

    def __init__(self, masks: dict[int, int], bits: AreaBits) -> None:
        self._masks, self._bits = masks, bits

    def __getitem__(self, pid: int) -> frozenset[str]:
        return self._bits.decode(self._masks[pid])

    def __iter__(self) -> Iterator[int]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)


def reach(snap: Snapshot, people: Iterable[int] | None = None) -> Reach:
    """The areas each person (all of the snapshot's, or `people`) can reach."""
    bits = AreaBits(area_names(snap).values())
    return _Named(_masks(snap, bits, people), bits)


@dataclass
class ReachChange:
    """Per person the areas before and after a change, and the difference (by person id,
    then area name)."""

    before: Reach = field(default_factory=dict)
    after: Reach = field(default_factory=dict)
    gained: Access = field(default_factory=list)
    lost: Access = field(default_factory=list)

    @property
    def people(self) -> set[int]:
        """Everyone who gains or loses an area."""
        return {pid for pid, _ in self.gained} | {pid for pid, _ in self.lost}


def compare(before: Snapshot, after: Snapshot) -> ReachChange:
    """What each person can reach under `before` and under `after`, and who gains and loses
    which area; a person in only one of the snapshots reaches nothing in the other."""
    bits = AreaBits([*area_names(before).values(), *area_names(after).values()])
    was, now = _masks(before, bits), _masks(after, bits)
    out = ReachChange(_Named(was, bits), _Named(now, bits))
    for pid in sorted(was.keys() | now.keys()):
        a, b = was.get(pid, 0), now.get(pid, 0)
        if a != b:
            out.gained.extend((pid, name) for name in _names_of(bits.names, b & ~a))
            out.lost.extend((pid, name) for name in _names_of(bits.names, a & ~b))
    return out
