"""Which panel is which on the wire, and which doors and readers are its own.

A panel's topics name it as ``<facility code>/<panel name>``; a reader belongs to it when
the reader names the panel, or names none and its door does. A request or event for a
reader or door that is not the panel's own is spoofed (or misconfigured) and refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.models import Door, Facility, Panel, Reader
from accessd.models.enums import PanelTransport
from drivers.mqtt.topics import PanelTopics, TopicError


@dataclass(frozen=True, slots=True)
class PanelInfo:
    id: int
    facility_id: int
    topics: PanelTopics
    doors: frozenset[int]
    #: reader id → its door
    readers: dict[int, int]

    @property
    def site(self) -> str:
        return self.topics.site

    @property
    def name(self) -> str:
        return self.topics.panel


class PanelDirectory:
    """The MQTT panels by (site, name) and by id, reloaded when the site changes."""

    def __init__(self) -> None:
        self._by_wire: dict[tuple[str, str], PanelInfo] = {}
        self._by_id: dict[int, PanelInfo] = {}
        self.skipped: list[str] = []

    def get(self, site: str, panel: str) -> PanelInfo | None:
        return self._by_wire.get((site, panel))

    def by_id(self, panel_id: int) -> PanelInfo | None:
        return self._by_id.get(panel_id)

    def panels(self) -> Iterator[PanelInfo]:
        yield from self._by_id.values()

    def panel_of_door(self, door_id: int) -> PanelInfo | None:
        for info in self._by_id.values():
            if door_id in info.doors:
                return info
        return None

    def __len__(self) -> int:
        return len(self._by_id)

    async def load(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            panels = (
                await session.execute(
                    select(Panel.id, Panel.facility_id, Panel.name, Facility.code)
                    .join(Facility, Facility.id == Panel.facility_id)
                    .where(Panel.transport == PanelTransport.MQTT)
                )
            ).all()
            doors = (await session.execute(select(Door.id, Door.panel_id))).all()
            readers = (
                await session.execute(select(Reader.id, Reader.door_id, Reader.panel_id))
            ).all()
        door_panel = {d.id: d.panel_id for d in doors}
        infos: list[PanelInfo] = []
        skipped: list[str] = []
        for p in panels:
            try:
                topics = PanelTopics(p.code, p.name)
            except TopicError as exc:
                # A name MQTT cannot carry: the panel cannot be reached, say so once.
                skipped.append(f"panel {p.id}: {exc}")
                continue
            own_doors = frozenset(d for d, pid in door_panel.items() if pid == p.id)
            own_readers = {
                r.id: r.door_id
                for r in readers
                if r.panel_id == p.id or (r.panel_id is None and door_panel.get(r.door_id) == p.id)
            }
            info = PanelInfo(
                p.id, p.facility_id, topics, own_doors | set(own_readers.values()), own_readers
            )
            infos.append(info)
        self.set_panels(infos, skipped)

    def set_panels(self, panels: Iterable[PanelInfo], skipped: Iterable[str] = ()) -> None:
        """The directory becomes ``panels`` (what `load` found, or a test's)."""
        infos = list(panels)
        self._by_wire = {(i.topics.site, i.topics.panel): i for i in infos}
        self._by_id = {i.id: i for i in infos}
        self.skipped = list(skipped)
