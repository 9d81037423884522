"""The site a policy describes, normalised so that a document and the database compare field
by field: references by name, schedules in minutes, sets where order means nothing, threat
overrides merged with their defaults, access-level areas expanded to their doors.

`diff(old, new)` is pure: it names every record added, changed (field by field, in the
file's own words) and removed, in the order the records depend on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, ClassVar, Literal

from accessd.models.enums import Entity
from accessd.policyfile import times
from accessd.policyfile.document import PolicyDocument, ThreatOverride, walk_areas
from policies.schedules import Interval
from policies.snapshot import DEFAULT_THREAT_RULES
from policies.vocabulary import ThreatLevel

#: (level, min_factors, only these groups or None for everyone), by threat rank.
ThreatRules = tuple[tuple[str, int, tuple[str, ...] | None], ...]


def _set(show: Callable[[Any], str] = str) -> dict[str, Any]:
    """Field metadata: a set, shown in a diff as `+added -removed`."""
    return {"set": True, "show": show}


def _label(label: str, show: Callable[[Any], str] | None = None) -> dict[str, Any]:
    return {"label": label, **({"show": show} if show else {})}


def _ranges(spans: tuple[Interval, ...]) -> str:
    return ", ".join(times.format_range(s) for s in spans) or "closed"


def _threats(rules: ThreatRules) -> str:
    parts = []
    for level, n, only in rules:
        who = "" if only is None else f", only {', '.join(only) or 'nobody'}"
        parts.append(f"{level} {n} factors{who}")
    return "; ".join(parts) or "defaults"


def _seconds_off(value: int) -> str:
    return f"{value}s" if value else "off"


def _minutes(value: int) -> str:
    return f"{value // 60} min" if value % 60 == 0 else f"{value}s"


@dataclass(frozen=True, slots=True)
class Record:
    KEY: ClassVar[tuple[str, ...]] = ("name",)
    ENTITY: ClassVar[Entity]

    @property
    def key(self) -> Any:
        values = tuple(getattr(self, k) for k in self.KEY)
        return values[0] if len(values) == 1 else values

    @property
    def label(self) -> str:
        return "/".join(str(getattr(self, k)) for k in self.KEY)


@dataclass(frozen=True, slots=True)
class CalendarRec(Record):
    ENTITY = Entity.HOLIDAY_CALENDAR
    name: str
    days: frozenset[tuple[date, str]] = field(
        metadata=_set(lambda d: f"{d[0].isoformat()} {d[1]}".strip())
    )


@dataclass(frozen=True, slots=True)
class ScheduleRec(Record):
    ENTITY = Entity.SCHEDULE
    name: str
    week: times.Week = field(metadata=_label("week", times.describe_week))
    on_holidays: tuple[Interval, ...] = field(metadata=_label("on_holidays", _ranges))
    holiday_calendars: frozenset[str] = field(metadata=_set())


@dataclass(frozen=True, slots=True)
class GroupRec(Record):
    ENTITY = Entity.GROUP
    name: str
    description: str
    members: frozenset[str] = field(metadata=_set())


@dataclass(frozen=True, slots=True)
class FacilityRec(Record):
    KEY = ("code",)
    ENTITY = Entity.FACILITY
    code: str
    name: str
    timezone: str
    security_level: int
    address: str
    threat_levels: ThreatRules = field(metadata=_label("threat_levels", _threats))


@dataclass(frozen=True, slots=True)
class PanelRec(Record):
    KEY = ("facility", "name")
    ENTITY = Entity.PANEL
    facility: str
    name: str
    transport: str


@dataclass(frozen=True, slots=True)
class AreaRec(Record):
    KEY = ("facility", "name")
    ENTITY = Entity.AREA
    facility: str
    name: str
    #: The enclosing area; None at the top of the facility.
    parent: str | None
    area_class: str = field(metadata=_label("class"))
    scif: bool
    clearance: str
    programs: frozenset[str] = field(metadata=_set())
    two_person_window_s: int = field(metadata=_label("two_person", _seconds_off))
    escort_required: bool = field(metadata=_label("escort required"))
    escort_window_s: int = field(metadata=_label("escort window_seconds"))
    anti_passback: str
    apb_reset_s: int = field(metadata=_label("anti_passback reset", _minutes))
    occupancy_limit: int | None


@dataclass(frozen=True, slots=True)
class DoorRec(Record):
    KEY = ("facility", "name")
    ENTITY = Entity.DOOR
    facility: str
    name: str
    into: str
    from_area: str | None = field(metadata=_label("from"))
    panel: str | None
    mode: str
    unlock_schedule: str | None
    unlock_seconds: int
    accepts: frozenset[str] = field(metadata=_set())


@dataclass(frozen=True, slots=True)
class ReaderRec(Record):
    KEY = ("facility", "door", "name")
    ENTITY = Entity.READER
    facility: str
    door: str
    name: str
    #: Always the door's panel: the file names panels per door.
    panel: str | None
    direction: str
    contact: bool
    contactless: bool
    pin_pad: bool
    biometric: bool
    osdp_address: int | None


@dataclass(frozen=True, slots=True)
class LevelRec(Record):
    ENTITY = Entity.ACCESS_LEVEL
    name: str
    description: str
    schedule: str | None
    doors: frozenset[tuple[str, str]] = field(metadata=_set(lambda d: "/".join(d)))
    groups: frozenset[str] = field(metadata=_set())
    people: frozenset[str] = field(metadata=_set())


@dataclass
class Site:
    """Every record of a policy by its natural key, in the order each kind is written."""

    calendars: dict[str, CalendarRec] = field(default_factory=dict)
    schedules: dict[str, ScheduleRec] = field(default_factory=dict)
    groups: dict[str, GroupRec] = field(default_factory=dict)
    facilities: dict[str, FacilityRec] = field(default_factory=dict)
    panels: dict[tuple[str, str], PanelRec] = field(default_factory=dict)
    areas: dict[tuple[str, str], AreaRec] = field(default_factory=dict)
    doors: dict[tuple[str, str], DoorRec] = field(default_factory=dict)
    readers: dict[tuple[str, str, str], ReaderRec] = field(default_factory=dict)
    levels: dict[str, LevelRec] = field(default_factory=dict)

    def kinds(self) -> list[Mapping[Any, Record]]:
        return [
            self.calendars,
            self.schedules,
            self.groups,
            self.facilities,
            self.panels,
            self.areas,
            self.doors,
            self.readers,
            self.levels,
        ]

    def area_depth(self, key: tuple[str, str]) -> int:
        depth, parent = 0, self.areas[key].parent
        while parent is not None:
            depth += 1
            parent = self.areas[(key[0], parent)].parent
        return depth


# -- from a document ------------------------------------------------------------------------


def threat_rules(overrides: Mapping[ThreatLevel, ThreatOverride]) -> ThreatRules:
    """The overridden levels, each merged with its default: a key the file leaves out keeps
    the default (lockdown admits nobody unless `only_groups` says who)."""
    out = []
    for level in sorted(overrides, key=lambda t: t.rank):
        given, default = overrides[level], DEFAULT_THREAT_RULES[level]
        n = given.min_factors if "min_factors" in given.model_fields_set else default.min_factors
        if "only_groups" in given.model_fields_set:
            only = None if given.only_groups is None else tuple(sorted(set(given.only_groups)))
        else:
            # The defaults name no groups: None (everyone) or empty (nobody).
            only = None if default.only_groups is None else ()
        out.append((level.value, n, only))
    return tuple(out)


def from_document(doc: PolicyDocument) -> Site:
    """The site a document that passed its checks describes."""
    site = Site()
    for cal in doc.holiday_calendars:
        site.calendars[cal.name] = CalendarRec(cal.name, frozenset(cal.days.items()))
    for s in doc.schedules:
        site.schedules[s.name] = ScheduleRec(
            s.name, s.minutes, s.holiday_minutes, frozenset(s.holiday_calendars)
        )
    for g in doc.groups:
        site.groups[g.name] = GroupRec(g.name, g.description, frozenset(g.members))
    into: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for fac in doc.facilities:
        code = fac.code
        site.facilities[code] = FacilityRec(
            code,
            fac.name,
            fac.timezone,
            fac.security_level,
            fac.address,
            threat_rules(fac.threat_levels),
        )
        for p in fac.panels:
            site.panels[(code, p.name)] = PanelRec(code, p.name, p.transport.value)
        for a, parent, _ in walk_areas(fac.areas, ()):
            apb = a.anti_passback
            site.areas[(code, a.name)] = AreaRec(
                facility=code,
                name=a.name,
                parent=parent.name if parent else None,
                area_class=a.area_class.value,
                scif=a.scif,
                clearance=a.clearance.value,
                programs=frozenset(a.programs),
                two_person_window_s=a.two_person.window_seconds if a.two_person else 0,
                escort_required=a.escort.required,
                escort_window_s=a.escort.window_seconds,
                anti_passback=apb.mode.value if apb else "none",
                apb_reset_s=apb.reset_minutes * 60 if apb else 0,
                occupancy_limit=a.occupancy_limit,
            )
        for d in fac.doors:
            site.doors[(code, d.name)] = DoorRec(
                facility=code,
                name=d.name,
                into=d.into,
                from_area=d.from_area,
                panel=d.panel,
                mode=d.mode.value,
                unlock_schedule=d.unlock_schedule,
                unlock_seconds=d.unlock_seconds,
                accepts=frozenset(m.value for m in d.accepts),
            )
            into.setdefault((code, d.into), []).append((code, d.name))
            for r in d.readers:
                site.readers[(code, d.name, r.name)] = ReaderRec(
                    facility=code,
                    door=d.name,
                    name=r.name,
                    panel=d.panel,
                    direction=r.direction.value,
                    contact=r.contact,
                    contactless=r.contactless,
                    pin_pad=r.pin_pad,
                    biometric=r.biometric,
                    osdp_address=r.osdp_address,
                )
    for lvl in doc.access_levels:
        doors = {_split(ref) for ref in lvl.doors}
        for ref in lvl.areas:
            doors.update(into.get(_split(ref), ()))
        site.levels[lvl.name] = LevelRec(
            lvl.name,
            lvl.description,
            lvl.schedule,
            frozenset(doors),
            frozenset(lvl.groups),
            frozenset(lvl.people),
        )
    return site


def _split(ref: str) -> tuple[str, str]:
    code, _, name = ref.partition("/")
    return code, name


# -- the difference between two sites -------------------------------------------------------

Action = Literal["added", "changed", "removed"]


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    entity: Entity
    key: Any
    name: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.entity.replace('_', ' ')} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text


_SIGN = {"added": "+", "changed": "~", "removed": "-"}


@dataclass
class SiteDiff:
    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def keys(self, entity: Entity, action: Action) -> list[Any]:
        """Keys of one kind of record with one action, each once, in diff order."""
        seen: dict[Any, None] = {}
        for c in self.changes:
            if c.entity == entity and c.action == action:
                seen.setdefault(c.key, None)
        return list(seen)

    def summary(self) -> dict[str, list[str]]:
        """{"added": [...], "changed": [...], "removed": [...]}, as a version row keeps it."""
        out: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        for c in self.changes:
            out[c.action].append(str(c))
        return out

    def removed_beyond(self, facilities: Iterable[str]) -> list[Change]:
        """The removals of records the files do not describe: facilities not among
        ``facilities`` (their codes) with everything in them, and schedules, calendars,
        groups and access levels. A door or area left out of a facility the files describe
        is an edit of that facility, not among these."""
        described = set(facilities)
        inside = {Entity.PANEL, Entity.AREA, Entity.DOOR, Entity.READER}
        return [
            c
            for c in self.changes
            if c.action == "removed"
            and not (c.entity == Entity.FACILITY and c.key in described)
            and not (c.entity in inside and c.key[0] in described)
        ]

    def lines(self) -> list[str]:
        """`+ door HQ/Side`, `~ door HQ/Main: mode card_only -> card_and_pin`, `- …`."""
        return [f"{_SIGN[c.action]} {c}" for c in self.changes]


def diff(old: Site, new: Site) -> SiteDiff:
    out = SiteDiff()
    for before, after in zip(old.kinds(), new.kinds(), strict=True):
        for key, rec in after.items():
            if key not in before:
                out.changes.append(Change("added", rec.ENTITY, key, rec.label))
            elif before[key] != rec:
                out.changes.extend(
                    Change("changed", rec.ENTITY, key, rec.label, detail)
                    for detail in field_changes(before[key], rec)
                )
        out.changes.extend(
            Change("removed", rec.ENTITY, key, rec.label)
            for key, rec in before.items()
            if key not in after
        )
    return out


def field_changes(old: Record, new: Record) -> list[str]:
    """`mode card_only -> card_and_pin`, `members +E1 -E2`, one per field that differs."""
    out = []
    for f in fields(new):
        if f.name in new.KEY:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        label = f.metadata.get("label", f.name)
        show: Callable[[Any], str] = f.metadata.get("show", _show)
        if f.metadata.get("set"):
            out.append(f"{label} {_set_change(a, b, show)}")
        else:
            out.append(f"{label} {show(a)} -> {show(b)}")
    return out


def _set_change(old: Iterable[Any], new: Iterable[Any], show: Callable[[Any], str]) -> str:
    a, b = set(old), set(new)
    plus = [f"+{show(x)}" for x in sorted(b - a)]
    minus = [f"-{show(x)}" for x in sorted(a - b)]
    return " ".join(plus + minus)


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
