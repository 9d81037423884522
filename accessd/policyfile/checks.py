"""What the schema cannot see: names defined once, references that resolve, and the SP 800-116
rules (what a door into each area must demand, SCIFs, unlocked doors), each by line.

Errors refuse the file; warnings point at something odd that may still be meant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from accessd.policyfile.document import (
    AccessLevelDoc,
    AreaDoc,
    DoorDoc,
    FacilityDoc,
    PolicyDocument,
    ReaderDoc,
    walk_areas,
)
from accessd.policyfile.findings import Finding, Lines, Path, Severity
from policies.factors import AREA_FACTORS, demanded, factors_of, missing
from policies.vocabulary import (
    AreaClass,
    Direction,
    DoorMode,
    Eligibility,
    Factor,
    Mechanism,
)

M = Mechanism
_CLASS_RANK = {c: i for i, c in enumerate(AreaClass)}
_OPEN_MODES = (DoorMode.UNLOCKED_BY_SCHEDULE, DoorMode.FIRST_PERSON_IN)
#: What SP 800-116 accepts for each number of factors, for the fix an error suggests.
_ACCEPTABLE = {
    1: "pki_cak, sm_auth or pki_auth",
    2: "pki_auth (the card checks the PIN), or pki_cak with pin",
    3: "pki_auth with bio",
}
_CARD_READS = frozenset({M.PKI_CAK, M.SM_AUTH, M.CHUID, M.BADGE})


def check(doc: PolicyDocument, lines: Lines) -> list[Finding]:
    """Every semantic error and warning in a document the schema accepted."""
    c = _Checker(lines)
    c.document(doc)
    return c.findings


class Capabilities(Protocol):
    """A reader's hardware, as a file (ReaderDoc) or the database (ReaderRec) describes it."""

    @property
    def contact(self) -> bool: ...
    @property
    def contactless(self) -> bool: ...
    @property
    def pin_pad(self) -> bool: ...
    @property
    def biometric(self) -> bool: ...


def performs(reader: Capabilities) -> frozenset[Mechanism]:
    """The mechanisms a reader's hardware can carry out. PKI-AUTH needs the contact
    interface and a PIN pad (the 9A key is used only after VERIFY)."""
    can: set[Mechanism] = set()
    if reader.contact or reader.contactless:
        can |= _CARD_READS
    if reader.pin_pad:
        can.add(M.PIN)
        if reader.contact:
            can.add(M.PKI_AUTH)
    if reader.biometric:
        can.add(M.BIO)
    return frozenset(can)


def _names(factors: Iterable[str]) -> str:
    return ", ".join(factors) or "nothing"


def _in_order(factors: frozenset[Factor]) -> tuple[str, ...]:
    """Factor names in the order a reader asks for them (have, know, are)."""
    return missing(factors, frozenset())


class _Checker:
    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self.findings: list[Finding] = []

    def _add(self, severity: Severity, path: Sequence[object], message: str) -> None:
        self.findings.append(self.lines.finding(path, message, severity))

    def error(self, path: Sequence[object], message: str) -> None:
        self._add("error", path, message)

    def warn(self, path: Sequence[object], message: str) -> None:
        self._add("warning", path, message)

    def unique(self, what: str, items: Iterable[tuple[str, Sequence[object]]]) -> set[str]:
        """Reports names given twice; returns the set of names."""
        first: dict[str, Sequence[object]] = {}
        for name, path in items:
            if name in first:
                self.error(
                    path,
                    f"{what} {name!r} is defined twice "
                    f"(first {self.lines.first_at(first[name], path)})",
                )
            else:
                first[name] = path
        return set(first)

    # -- the document ---------------------------------------------------------------------

    def document(self, doc: PolicyDocument) -> None:
        calendars = self.unique(
            "holiday calendar",
            (
                (c.name, ("holiday_calendars", i, "name"))
                for i, c in enumerate(doc.holiday_calendars)
            ),
        )
        schedules = self.unique(
            "schedule", ((s.name, ("schedules", i, "name")) for i, s in enumerate(doc.schedules))
        )
        groups = self.unique(
            "group", ((g.name, ("groups", i, "name")) for i, g in enumerate(doc.groups))
        )
        self.unique(
            "access level",
            ((a.name, ("access_levels", i, "name")) for i, a in enumerate(doc.access_levels)),
        )
        self.unique(
            "facility", ((f.code, ("facilities", i, "code")) for i, f in enumerate(doc.facilities))
        )
        for i, sched in enumerate(doc.schedules):
            for j, cal in enumerate(sched.holiday_calendars):
                if cal not in calendars:
                    self.error(
                        ("schedules", i, "holiday_calendars", j),
                        f"schedule {sched.name!r}: no holiday calendar {cal!r}",
                    )
            if sched.on_holidays and not sched.holiday_calendars:
                self.warn(
                    ("schedules", i, "on_holidays"),
                    f"schedule {sched.name!r}: on_holidays has no effect without holiday_calendars",
                )
        doors_of: dict[str, dict[str, DoorDoc]] = {}
        areas_of: dict[str, set[str]] = {}
        for i, fac in enumerate(doc.facilities):
            doors_of[fac.code], areas_of[fac.code] = self.facility(
                fac, ("facilities", i), schedules, groups
            )
        for i, level in enumerate(doc.access_levels):
            self.level(level, ("access_levels", i), schedules, groups, doors_of, areas_of)

    def facility(
        self,
        fac: FacilityDoc,
        path: Path,
        schedules: set[str],
        groups: set[str],
    ) -> tuple[dict[str, DoorDoc], set[str]]:
        for level, rule in fac.threat_levels.items():
            for j, group in enumerate(rule.only_groups or ()):
                if group not in groups:
                    self.error(
                        (*path, "threat_levels", level, "only_groups", j),
                        f"facility {fac.code}: threat level {level}: no group {group!r}",
                    )
        tree = walk_areas(fac.areas, (*path, "areas"))
        self.unique(f"{fac.code}: area", ((a.name, (*p, "name")) for a, _, p in tree))
        areas = {a.name: a for a, _, _ in tree}
        panels = self.unique(
            f"{fac.code}: panel",
            ((p.name, (*path, "panels", i, "name")) for i, p in enumerate(fac.panels)),
        )
        self.unique(
            f"{fac.code}: door",
            ((d.name, (*path, "doors", i, "name")) for i, d in enumerate(fac.doors)),
        )
        parents = {a.name: parent for a, parent, _ in tree}
        for area, parent, apath in tree:
            self.area(fac, area, parent, parents, apath)
        used: set[str] = set()
        osdp: dict[tuple[str, int], str] = {}
        for i, door in enumerate(fac.doors):
            dpath = (*path, "doors", i)
            used.update(a for a in (door.into, door.from_area) if a is not None)
            self.door(fac, door, dpath, areas, panels, schedules)
            for j, reader in enumerate(door.readers):
                if door.panel is None or reader.osdp_address is None:
                    continue
                key = (door.panel, reader.osdp_address)
                if key in osdp:
                    self.error(
                        (*dpath, "readers", j, "osdp_address"),
                        f"reader {reader.name!r} of door {fac.code}/{door.name}: OSDP address "
                        f"{reader.osdp_address} on panel {door.panel} is taken by {osdp[key]}",
                    )
                osdp[key] = f"reader {reader.name!r} of door {fac.code}/{door.name}"
        for area, _, apath in tree:
            if area.name not in used:
                self.warn((*apath, "name"), f"area {fac.code}/{area.name}: no door leads to it")
        return {d.name: d for d in fac.doors}, set(areas)

    # -- areas ------------------------------------------------------------------------------

    def area(
        self,
        fac: FacilityDoc,
        area: AreaDoc,
        parent: AreaDoc | None,
        parents: dict[str, AreaDoc | None],
        path: Path,
    ) -> None:
        label = f"{fac.code}/{area.name}"
        if parent is not None and _CLASS_RANK[area.area_class] < _CLASS_RANK[parent.area_class]:
            self.error(
                (*path, "class"),
                f"area {label} ({area.area_class}) is nested in {parent.area_class} area "
                f"{parent.name}: an inner area must be at least as restricted as the one "
                f"around it",
            )
        if area.scif:
            if area.area_class not in (AreaClass.LIMITED, AreaClass.EXCLUSION):
                self.error(
                    (*path, "class"),
                    f"area {label} is a SCIF but a {area.area_class} area: a SCIF must be a "
                    f"limited or exclusion area",
                )
            clearance = _effective_clearance(area, parents)
            if clearance.rank < Eligibility.TOP_SECRET.rank:
                at = "clearance" if "clearance" in area.model_fields_set else "scif"
                self.error(
                    (*path, at),
                    f"area {label} is a SCIF with clearance {clearance}: a SCIF needs "
                    f"top_secret or ts_sci",
                )
        if area.two_person is not None:
            if area.occupancy_limit == 1:
                self.error(
                    (*path, "occupancy_limit"),
                    f"area {label}: the two-person rule cannot be kept with an occupancy limit "
                    f"of 1",
                )
            elif area.occupancy_limit is None:
                self.warn(
                    (*path, "two_person"),
                    f"area {label} has the two-person rule but no occupancy_limit",
                )

    # -- doors and readers ------------------------------------------------------------------

    def door(
        self,
        fac: FacilityDoc,
        door: DoorDoc,
        path: Path,
        areas: dict[str, AreaDoc],
        panels: set[str],
        schedules: set[str],
    ) -> None:
        label = f"door {fac.code}/{door.name}"
        into = areas.get(door.into)
        if into is None:
            self.error((*path, "into"), f"{label}: no area {door.into!r} in {fac.code}")
        source = areas.get(door.from_area) if door.from_area is not None else None
        if door.from_area is not None and source is None:
            self.error((*path, "from"), f"{label}: no area {door.from_area!r} in {fac.code}")
        if door.from_area is not None and door.from_area == door.into:
            self.error((*path, "from"), f"{label} leads from {door.into} into itself")
        if door.panel is not None and door.panel not in panels:
            self.error((*path, "panel"), f"{label}: no panel {door.panel!r} in {fac.code}")
        if door.unlock_schedule is not None and door.unlock_schedule not in schedules:
            self.error((*path, "unlock_schedule"), f"{label}: no schedule {door.unlock_schedule!r}")
        self.door_mode(label, door, path, (into, source))
        if into is not None and door.mode is not DoorMode.LOCKED:
            self.door_factors(label, door, path, {Direction.IN: into, Direction.OUT: source})

    def door_mode(
        self, label: str, door: DoorDoc, path: Path, sides: tuple[AreaDoc | None, ...]
    ) -> None:
        """A door unlocked by a schedule is open both ways: neither side may be limited or
        exclusion (SP 800-116 demands factors at every entry to those)."""
        if door.mode in _OPEN_MODES:
            if door.unlock_schedule is None:
                self.error((*path, "mode"), f"{label}: mode {door.mode} needs an unlock_schedule")
            for side in sides:
                if side is not None and side.area_class in (AreaClass.LIMITED, AreaClass.EXCLUSION):
                    self.error(
                        (*path, "mode"),
                        f"{label}: mode {door.mode} would leave {side.area_class} area "
                        f"{side.name} open; SP 800-116 {side.area_class} areas demand "
                        f"{len(AREA_FACTORS[side.area_class])} factors at every entry",
                    )
        elif door.unlock_schedule is not None:
            self.warn(
                (*path, "unlock_schedule"),
                f"{label}: unlock_schedule has no effect in mode {door.mode}",
            )

    def door_factors(
        self, label: str, door: DoorDoc, path: Path, entered: dict[Direction, AreaDoc | None]
    ) -> None:
        """What the door accepts must prove what each area its readers enter demands; then
        each reader must be able to carry that out."""
        directions = {Direction(r.direction) for r in door.readers} or {Direction.IN}
        pin_mode = door.mode is DoorMode.CARD_AND_PIN
        accepts = frozenset(door.accepts)
        proved = factors_of(accepts)
        for direction in sorted(directions):
            area = entered[direction]
            need = demanded(area.area_class if area else None, pin_mode, 0)
            lacking = missing(need, proved)
            if not lacking:
                continue
            where = f"{area.area_class} area {area.name}" if area else "the outside"
            if pin_mode:
                where += " in mode card_and_pin"
            self.error(
                (*path, "accepts") if "accepts" in door.model_fields_set else path,
                f"{label}: {where} demands {_names(_in_order(need))}; the door accepts "
                f"{_names(sorted(accepts))}, proving {_names(_in_order(proved))}: missing "
                f"{_names(lacking)} (SP 800-116: accept {_ACCEPTABLE[len(need)]})",
            )
            return
        for j, reader in enumerate(door.readers):
            self.reader(label, door, reader, (*path, "readers", j), entered, pin_mode)
        capable = frozenset().union(*(performs(r) for r in door.readers))
        for mech in sorted(accepts - capable if door.readers else frozenset()):
            self.warn(
                (*path, "accepts"),
                f"{label} accepts {mech} but none of its readers can carry it out",
            )

    def reader(
        self,
        label: str,
        door: DoorDoc,
        reader: ReaderDoc,
        path: Path,
        entered: dict[Direction, AreaDoc | None],
        pin_mode: bool,
    ) -> None:
        area = entered[Direction(reader.direction)]
        need = demanded(area.area_class if area else None, pin_mode, 0)
        accepts = frozenset(door.accepts)
        lacking = missing(need, factors_of(accepts & performs(reader)))
        if not lacking:
            return
        wants: list[str] = []
        if "card_authentication" in lacking and not (reader.contact or reader.contactless):
            wants.append("a card interface")
        if "pin" in lacking:
            if not reader.pin_pad:
                wants.append("a PIN pad")
            if M.PIN not in accepts and M.PKI_AUTH in accepts and not reader.contact:
                wants.append("the contact interface (for pki_auth)")
        if "biometric" in lacking and not reader.biometric:
            wants.append("a biometric sensor")
        where = f"{area.area_class} area {area.name}" if area else "the outside"
        self.error(
            path,
            f"reader {reader.name!r} of {label} cannot prove {_names(lacking)} for {where}: "
            f"it needs {' and '.join(wants) or 'to verify what the door accepts'}",
        )

    # -- access levels ----------------------------------------------------------------------

    def level(
        self,
        level: AccessLevelDoc,
        path: Path,
        schedules: set[str],
        groups: set[str],
        doors_of: dict[str, dict[str, DoorDoc]],
        areas_of: dict[str, set[str]],
    ) -> None:
        label = f"access level {level.name!r}"
        if level.schedule is not None and level.schedule not in schedules:
            self.error((*path, "schedule"), f"{label}: no schedule {level.schedule!r}")
        opens, broken = 0, False
        for j, ref in enumerate(level.doors):
            code, _, name = ref.partition("/")
            if code not in doors_of or name not in doors_of[code]:
                what = f"no facility {code!r}" if code not in doors_of else f"no door {name!r}"
                self.error((*path, "doors", j), f"{label}: {what} in {ref!r}")
                broken = True
            else:
                opens += 1
        for j, ref in enumerate(level.areas):
            code, _, name = ref.partition("/")
            if code not in areas_of or name not in areas_of[code]:
                what = f"no facility {code!r}" if code not in areas_of else f"no area {name!r}"
                self.error((*path, "areas", j), f"{label}: {what} in {ref!r}")
                broken = True
            else:
                opens += sum(d.into == name for d in doors_of[code].values())
        for j, group in enumerate(level.groups):
            if group not in groups:
                self.error((*path, "groups", j), f"{label}: no group {group!r}")
        if opens == 0 and not broken:
            self.warn((*path, "name"), f"{label} opens no door")


def _effective_clearance(area: AreaDoc, parents: dict[str, AreaDoc | None]) -> Eligibility:
    """The highest clearance on the way in: the engine folds ancestors' gates into each area."""
    best = area.clearance
    parent = parents.get(area.name)
    while parent is not None:
        if parent.clearance.rank > best.rank:
            best = parent.clearance
        parent = parents.get(parent.name)
    return best
