"""The SP 800-116 compliance report of the policy in the database, per facility: for every
door, what the area it leads into demands (its class, the door's card-and-PIN mode, the
facility's current threat level), what the door accepts and can therefore prove, what its
readers can carry out, and a verdict with the reasons.

The database can drift from what a checked policy file allowed (doors edited over the API,
a threat level raised), so the rules are those of `checks`, applied to the stored rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.errors import NotFound
from accessd.models import Area, Door, Facility, Reader
from accessd.policyfile.checks import performs
from accessd.policyfile.stored import threats_of
from policies.factors import FACTOR_ORDER, demanded, factors_of, missing
from policies.snapshot import DEFAULT_THREAT_RULES
from policies.vocabulary import (
    AreaClass,
    Direction,
    DoorMode,
    Eligibility,
    Factor,
    Mechanism,
    ThreatLevel,
)

_OPEN_MODES = {DoorMode.UNLOCKED_BY_SCHEDULE.value, DoorMode.FIRST_PERSON_IN.value}
_RESTRICTED = {AreaClass.LIMITED.value, AreaClass.EXCLUSION.value}
_MECHANISMS = {m.value: m for m in Mechanism}


@dataclass(frozen=True, slots=True)
class ReaderReport:
    name: str
    direction: str
    contact: bool
    contactless: bool
    pin_pad: bool
    biometric: bool
    #: The mechanisms its hardware can carry out.
    performs: list[str]


@dataclass
class DoorReport:
    door: str
    mode: str
    #: The area its `in` readers enter, and that area's class.
    area: str
    area_class: str
    scif: bool
    #: Factors demanded at the `in` side now: class, card-and-PIN mode and threat level.
    demanded: list[str]
    accepts: list[str]
    #: The factors what the door accepts can prove.
    proves: list[str]
    readers: list[ReaderReport]
    compliant: bool = True
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "compliant" if self.compliant else "non-compliant"


@dataclass
class FacilityReport:
    code: str
    name: str
    threat_level: str
    #: The threat level's minimum number of factors (on top of each area's own demand).
    threat_min_factors: int
    doors: list[DoorReport]
    compliant: bool = True

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


async def report(session: AsyncSession, *, facility: str | None = None) -> list[FacilityReport]:
    """The report of every facility (or of the one with code `facility`: NotFound if none
    has it), facilities by code and doors by name."""
    stmt = select(Facility).order_by(Facility.code)
    if facility is not None:
        stmt = stmt.where(Facility.code == facility)
    facilities = list((await session.scalars(stmt)).all())
    if facility is not None and not facilities:
        raise NotFound(f"no facility has code {facility!r}")
    ids = [f.id for f in facilities]
    areas = {a.id: a for a in await session.scalars(select(Area).where(Area.facility_id.in_(ids)))}
    doors = list(
        await session.scalars(
            select(Door).where(Door.area_id.in_(list(areas))).order_by(Door.name, Door.id)
        )
    )
    readers: dict[int, list[Reader]] = {}
    for r in await session.scalars(
        select(Reader).where(Reader.door_id.in_([d.id for d in doors])).order_by(Reader.name)
    ):
        readers.setdefault(r.door_id, []).append(r)
    out = []
    for fac in facilities:
        level = ThreatLevel(fac.threat_level)
        n = _min_factors(fac, level)
        rows = [
            _door(d, areas, readers.get(d.id, []), level, n)
            for d in doors
            if areas[d.area_id].facility_id == fac.id
        ]
        out.append(
            FacilityReport(fac.code, fac.name, level.value, n, rows, all(d.compliant for d in rows))
        )
    return out


def _min_factors(fac: Facility, level: ThreatLevel) -> int:
    for name, n, _ in threats_of(fac.threat_rules):
        if name == level.value:
            return n
    return DEFAULT_THREAT_RULES[level].min_factors


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or "nothing"


def _ordered(factors: frozenset[Factor]) -> list[str]:
    return [f.value for f in FACTOR_ORDER if f in factors]


def _door(
    door: Door, areas: dict[int, Area], readers: list[Reader], level: ThreatLevel, n: int
) -> DoorReport:
    into = areas[door.area_id]
    accepts = frozenset(_MECHANISMS[m] for m in door.accepts or () if m in _MECHANISMS)
    proved = factors_of(accepts)
    pin_mode = door.mode == DoorMode.CARD_AND_PIN.value
    row = DoorReport(
        door=door.name,
        mode=door.mode,
        area=into.name,
        area_class=into.area_class,
        scif=into.is_scif,
        demanded=_ordered(demanded(AreaClass(into.area_class), pin_mode, n)),
        accepts=sorted(door.accepts or ()),
        proves=_ordered(proved),
        readers=[
            ReaderReport(
                r.name,
                r.direction,
                r.contact,
                r.contactless,
                r.pin_pad,
                r.biometric,
                sorted(m.value for m in performs(r)),
            )
            for r in readers
        ],
    )
    reasons = row.reasons
    reasons.extend(_scif(into, areas))
    if door.mode != DoorMode.LOCKED.value:
        sides = {Direction(r.direction) for r in readers} or {Direction.IN}
        entered = {
            Direction.IN: into,
            Direction.OUT: areas.get(door.from_area_id) if door.from_area_id else None,
        }
        for side in sorted(sides):
            area = entered[side]
            if door.mode in _OPEN_MODES and area is not None and area.area_class in _RESTRICTED:
                reasons.append(
                    f"mode {door.mode} leaves {area.area_class} area {area.name} open on its "
                    f"unlock schedule"
                )
            on_side = [r for r in readers if Direction(r.direction) is side]
            reasons.extend(_factors(door, area, on_side, accepts, pin_mode, level, n))
    row.compliant = not reasons
    return row


def _factors(
    door: Door,
    area: Area | None,
    readers: list[Reader],
    accepts: frozenset[Mechanism],
    pin_mode: bool,
    level: ThreatLevel,
    n: int,
) -> list[str]:
    """Why the door, or a reader on this side, cannot prove what entering `area` demands."""
    area_class = AreaClass(area.area_class) if area is not None else None
    need = demanded(area_class, pin_mode, n)
    where = f"{area.area_class} area {area.name}" if area is not None else "the outside"
    if pin_mode and need != demanded(area_class, False, n):
        where += " (mode card_and_pin)"
    if need != demanded(area_class, pin_mode, 0):
        where += f" (threat level {level}: {n} factors)"
    proved = factors_of(accepts)
    lacking = missing(need, proved)
    if lacking:
        if not proved:
            given = f"{_names(sorted(accepts))} only" if accepts else "nothing"
            return [f"accepts {given}: proves no factor; {where} needs {_names(_ordered(need))}"]
        return [
            f"{where} needs {_names(lacking)}; the door accepts {_names(sorted(accepts))}, "
            f"proving {_names(_ordered(proved))}"
        ]
    short: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for r in readers:
        lacks = missing(need, factors_of(accepts & performs(r)))
        if lacks:
            short.setdefault((lacks, _wants(r, lacks, accepts)), []).append(r.name)
    out = []
    for (lacks, wants), names in short.items():
        many = len(names) > 1
        out.append(
            f"{where} needs {_names(lacks)}; reader{'s' if many else ''} "
            f"{_names(repr(n) for n in names)} {'have' if many else 'has'} no "
            f"{' and no '.join(wants) or 'way to verify what the door accepts'}"
        )
    return out


def _wants(
    reader: Reader, lacking: tuple[str, ...], accepts: frozenset[Mechanism]
) -> tuple[str, ...]:
    """The hardware a reader lacks to prove `lacking` with what the door accepts."""
    wants = []
    if Factor.HAVE.value in lacking and not (reader.contact or reader.contactless):
        wants.append("card interface")
    if Factor.KNOW.value in lacking:
        if not reader.pin_pad:
            wants.append("PIN pad")
        if Mechanism.PIN not in accepts and Mechanism.PKI_AUTH in accepts and not reader.contact:
            wants.append("contact interface (for pki_auth)")
    if Factor.ARE.value in lacking and not reader.biometric:
        wants.append("biometric sensor")
    return tuple(wants)


def _scif(area: Area, areas: dict[int, Area]) -> list[str]:
    """A SCIF must be a limited or exclusion area gated at top secret or above (its own
    clearance or an enclosing area's)."""
    if not area.is_scif:
        return []
    out = []
    if area.area_class not in _RESTRICTED:
        out.append(
            f"SCIF {area.name} is a {area.area_class} area: a SCIF must be limited or exclusion"
        )
    best, up, seen = Eligibility(area.min_eligibility), area.parent_id, {area.id}
    while up is not None and up not in seen and up in areas:
        seen.add(up)
        parent = areas[up]
        if Eligibility(parent.min_eligibility).rank > best.rank:
            best = Eligibility(parent.min_eligibility)
        up = parent.parent_id
    if best.rank < Eligibility.TOP_SECRET.rank:
        out.append(f"SCIF {area.name} admits {best} clearance: a SCIF needs top_secret or ts_sci")
    return out
