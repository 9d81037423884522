"""Many simulated panels in one process: door hardware around `drivers.panel` sessions.

Panel ``i`` (1-based) of a fleet is named ``<prefix><i>`` and has doors and readers
``(i-1)*doors_per_panel + 1 …``, one reader a door, so ids are unique across the site;
with a ``layout`` (`simulators.panel.layout`) the panels are a real site's, by name and ids.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from drivers.mqtt.access import panel_username
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.link import PanelLink
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import AccessResult, PanelConfig, PanelSession
from simulators.panel.layout import PanelLayout
from simulators.panel.reader import read_card
from simulators.piv_card import VirtualPivCard


@dataclass(frozen=True, slots=True)
class FleetConfig:
    host: str
    port: int
    site: str
    count: int
    state_dir: Path
    passwords: dict[str, str]
    prefix: str = "p"
    doors_per_panel: int = 2
    protocol: int = 5
    decide_timeout: float = 0.3
    heartbeat_seconds: float = 60.0
    #: The site's panels and their doors; when given, ``count`` and ``prefix`` are unused.
    layout: tuple[PanelLayout, ...] = ()
    #: The readers present cards this far from the panels' clock (`accessd demo --at`): the
    #: decisions are asked, and made, as of that time; the panels' own events keep theirs.
    time_offset: timedelta = timedelta(0)


class SimulatedPanel:
    """One panel: its session and the doors' hardware (DPS, REX) a scenario acts on."""

    def __init__(
        self, session: PanelSession, link: PanelLink, time_offset: timedelta = timedelta(0)
    ) -> None:
        self.session = session
        self.link = link
        self.name = session.config.panel
        self.time_offset = time_offset

    @property
    def readers(self) -> list[int]:
        return [r for d in self.session.config.doors for r in d.readers]

    def door_of(self, reader: int) -> int:
        return next(d.door for d in self.session.config.doors if reader in d.readers)

    async def badge(
        self, reader: int, card: VirtualPivCard, pin: str | None, *, walk: bool = True
    ) -> AccessResult:
        """A card at ``reader``; on a grant the person opens the door and it closes behind."""
        door = self.session.doors[self.door_of(reader)]
        presentation = await read_card(
            self.session, reader, card, pin=pin if door.needs_pin else None
        )
        if self.time_offset:
            presentation = replace(presentation, at=self.session.clock.now() + self.time_offset)
        result = await self.session.present(presentation)
        if result.granted and walk:
            door.position_changed(True)
            door.position_changed(False)
        return result

    async def force(self, door: int, seconds: float) -> None:
        """The door is pulled open while locked and shut again after ``seconds``."""
        controller = self.session.doors[door]
        controller.position_changed(True)
        await asyncio.sleep(seconds)
        controller.position_changed(False)

    async def exit(self, door: int) -> None:
        """Someone presses REX and walks out."""
        controller = self.session.doors[door]
        controller.rex()
        controller.position_changed(True)
        controller.position_changed(False)

    async def partition(self, seconds: float) -> None:
        if isinstance(self.link, MqttPanelLink):
            await self.link.partition(seconds)


def build_panel(config: FleetConfig, index: int) -> SimulatedPanel:
    if config.layout:
        name, doors = config.layout[index - 1].name, config.layout[index - 1].doors
    else:
        name = f"{config.prefix}{index}"
        first = (index - 1) * config.doors_per_panel + 1
        doors = tuple(
            DoorConfig(door=d, readers=(d,)) for d in range(first, first + config.doors_per_panel)
        )
    link = MqttPanelLink(
        panel_mqtt_config(
            config.site,
            name,
            host=config.host,
            port=config.port,
            password=config.passwords.get(panel_username(config.site, name)),
            protocol=config.protocol,
        )
    )
    session = PanelSession(
        PanelConfig(
            site=config.site,
            panel=name,
            doors=doors,
            firmware="accessd-simulator/1",
            protocol=5 if config.protocol == 5 else 3,
            decide_timeout=config.decide_timeout,
            heartbeat_seconds=config.heartbeat_seconds,
        ),
        link,
        EventBuffer(config.state_dir / f"{config.site}.{name}.db"),
    )
    return SimulatedPanel(session, link, config.time_offset)


async def start_fleet(config: FleetConfig) -> list[SimulatedPanel]:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    count = len(config.layout) if config.layout else config.count
    panels = [build_panel(config, i) for i in range(1, count + 1)]
    # Not all at once: hundreds of CONNECTs in the same millisecond is a broker restart's
    # load, not a start-up's.
    for start in range(0, len(panels), 50):
        await asyncio.gather(*(p.session.start() for p in panels[start : start + 50]))
    return panels


async def stop_fleet(panels: list[SimulatedPanel]) -> None:
    await asyncio.gather(*(p.session.close() for p in panels), return_exceptions=True)
    for p in panels:
        p.session.buffer.close()
