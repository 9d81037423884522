"""The database's policy written back as a document, so that applying an export changes
nothing: access levels list their doors one by one (the file's `areas` shorthand is not
recoverable), and threat overrides are written out in full."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.policyfile import times
from accessd.policyfile.document import (
    FORMAT_VERSION,
    AccessLevelDoc,
    AntiPassbackRule,
    AreaDoc,
    DoorDoc,
    Escort,
    FacilityDoc,
    GroupDoc,
    HolidayCalendarDoc,
    PanelDoc,
    PolicyDocument,
    ReaderDoc,
    ScheduleDoc,
    ThreatOverride,
    TwoPerson,
)
from accessd.policyfile.site import AreaRec, ReaderRec, Site
from accessd.policyfile.stored import load


async def export(session: AsyncSession) -> PolicyDocument:
    site, _ = await load(session)
    return to_document(site)


def dump(doc: PolicyDocument) -> str:
    """YAML text; keys left at their defaults are left out."""
    data = doc.model_dump(by_alias=True, exclude_unset=True)
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text


class _Dumper(yaml.SafeDumper):
    """Lists of plain values and small mappings of them on one line, as people write them."""


def _flat(values: Iterable[object]) -> bool:
    return all(not isinstance(v, dict | list) for v in values)


def _list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flat(data))


def _dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    flow = len(data) <= 4 and _flat(data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _enum(dumper: yaml.SafeDumper, data: enum.Enum) -> yaml.Node:
    return dumper.represent_str(str(data.value))


_Dumper.add_representer(list, _list)
_Dumper.add_representer(dict, _dict)
_Dumper.add_multi_representer(enum.Enum, _enum)


def to_document(site: Site) -> PolicyDocument:
    return PolicyDocument(
        version=FORMAT_VERSION,
        holiday_calendars=[
            HolidayCalendarDoc(name=c.name, days=dict(sorted(c.days)))
            for c in site.calendars.values()
        ],
        schedules=[
            ScheduleDoc(
                name=s.name,
                week=times.render_week(s.week),
                **_given(
                    holiday_calendars=sorted(s.holiday_calendars),
                    on_holidays=[times.format_range(r) for r in s.on_holidays],
                ),
            )
            for s in site.schedules.values()
        ],
        groups=[
            GroupDoc(name=g.name, **_given(description=g.description, members=sorted(g.members)))
            for g in site.groups.values()
        ],
        facilities=[_facility(site, code) for code in site.facilities],
        access_levels=[
            AccessLevelDoc(
                name=lvl.name,
                **_given(
                    description=lvl.description,
                    schedule=lvl.schedule,
                    doors=sorted(f"{c}/{d}" for c, d in lvl.doors),
                    groups=sorted(lvl.groups),
                    people=sorted(lvl.people),
                ),
            )
            for lvl in site.levels.values()
        ],
    )


def _given(**values: Any) -> dict[str, Any]:
    """Only the values that say something, so the export stays as short as a hand-written
    file (what is left out is the default)."""
    return {k: v for k, v in values.items() if v not in (None, "", [], {})}


def _facility(site: Site, code: str) -> FacilityDoc:
    fac = site.facilities[code]
    areas = [a for a in site.areas.values() if a.facility == code]
    return FacilityDoc(
        code=code,
        name=fac.name,
        timezone=fac.timezone,
        security_level=fac.security_level,
        **_given(
            address=fac.address,
            threat_levels={
                level: ThreatOverride(
                    min_factors=n, only_groups=None if only is None else list(only)
                )
                for level, n, only in fac.threat_levels
            },
            areas=_area_tree(areas, None),
            panels=[
                PanelDoc(name=p.name, transport=p.transport)
                for p in site.panels.values()
                if p.facility == code
            ],
            doors=[
                DoorDoc(
                    name=d.name,
                    into=d.into,
                    mode=d.mode,
                    accepts=sorted(d.accepts),
                    **_given(
                        panel=d.panel,
                        unlock_schedule=d.unlock_schedule,
                        unlock_seconds=d.unlock_seconds if d.unlock_seconds != 5 else None,
                        readers=[
                            _reader(r)
                            for r in site.readers.values()
                            if (r.facility, r.door) == (code, d.name)
                        ],
                    ),
                    **({"from": d.from_area} if d.from_area else {}),
                )
                for d in site.doors.values()
                if d.facility == code
            ],
        ),
    )


def _reader(r: ReaderRec) -> ReaderDoc:
    """Capabilities only where they differ from a plain contactless reader."""
    extra = {
        k: v
        for k, v in (
            ("contact", r.contact),
            ("contactless", r.contactless),
            ("pin_pad", r.pin_pad),
            ("biometric", r.biometric),
        )
        if v != ReaderDoc.model_fields[k].default
    }
    return ReaderDoc(
        name=r.name, direction=r.direction, **extra, **_given(osdp_address=r.osdp_address)
    )


def _area_tree(areas: list[AreaRec], parent: str | None) -> list[AreaDoc]:
    out = []
    for a in areas:
        if a.parent != parent:
            continue
        extra: dict[str, Any] = _given(programs=sorted(a.programs), areas=_area_tree(areas, a.name))
        if a.scif:
            extra["scif"] = True
        if a.clearance != "none":
            extra["clearance"] = a.clearance
        if a.two_person_window_s:
            extra["two_person"] = TwoPerson(window_seconds=a.two_person_window_s)
        if (a.escort_required, a.escort_window_s) != (True, 30):
            extra["escort"] = Escort(required=a.escort_required, window_seconds=a.escort_window_s)
        if a.anti_passback != "none" or a.apb_reset_s:
            # The file counts in minutes; a reset set to odd seconds elsewhere rounds up.
            extra["anti_passback"] = AntiPassbackRule(
                mode=a.anti_passback, reset_minutes=-(-a.apb_reset_s // 60)
            )
        if a.occupancy_limit is not None:
            extra["occupancy_limit"] = a.occupancy_limit
        out.append(AreaDoc.model_validate({"name": a.name, "class": a.area_class, **extra}))
    return out
