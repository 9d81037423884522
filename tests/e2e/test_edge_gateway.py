"""The whole chain with an OSDP reader: a PIV card at a simulated OSDP reader on a pty,
the edge controller (`accessd edge`'s pieces), a real Mosquitto with the project's config
and ACL, and accessd's MQTT gateway deciding and storing; then the same card decided by
the edge's own cache while accessd is away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from accessd.models import DecisionEvent
from drivers.edge.controller import GREEN, EdgeController, ReaderWiring
from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.transport import SerialLine
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import PanelConfig, PanelSession
from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from simulators.piv_card import VirtualPivCard
from tests.gateway.test_gateway import Site, site  # noqa: F401
from tests.mqtt_broker import mosquitto, mqtt_users  # noqa: F401
from tests.waiting import until


@pytest.fixture
async def edge(site: Site, tmp_path: Path) -> AsyncIterator[tuple[EdgeController, SimulatedReader]]:  # noqa: F811
    pty = PtyLine()
    reader = SimulatedReader(1)
    ReaderBus(pty, [reader])
    pty.start()
    line = await SerialLine.open(pty.slave_path)
    cp = ControlPanel(line, [PdConfig(1)], poll_interval=0.01)
    link = MqttPanelLink(
        panel_mqtt_config(
            "hq", "p1", host="127.0.0.1", port=site.broker.port, password=site.users["hq.p1"]
        ),
        retry_seconds=0.2,
    )
    door, reader_id = site.doors["Main entrance"], site.readers["Main in"]
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=door, readers=(reader_id,)),),
        decide_timeout=3.0,  # a loaded test machine; the 300 ms default is tested elsewhere
        request_timeout=3.0,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "edge.db"))
    controller = EdgeController(
        cp, session, [ReaderWiring(1, reader_id, door, strike_output=0, piv=True)]
    )
    await controller.start()
    await until(
        lambda: (
            link.connected
            and len(session.cache) > 0
            and cp.pds[1].online
            and session.challenges_held(reader_id) > 0
        )
    )
    yield controller, reader
    await controller.close()
    session.buffer.close()
    await pty.close()


async def test_a_piv_card_at_an_osdp_reader_is_decided_by_accessd_and_stored(
    site: Site,  # noqa: F811
    edge: tuple[EdgeController, SimulatedReader],
) -> None:
    controller, reader = edge
    reader.insert_card(VirtualPivCard(site.card))
    reader.present_card(128, uuid.UUID(site.card.card_uuid).bytes)
    await until(lambda: bool(controller.results))
    result = controller.results[0]
    assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    await until(lambda: reader.state.outputs.get(0) == 1 and bool(reader.state.led))
    assert reader.state.led[5] == GREEN
    await site.svc.app.state.accessd.decisions.store.flush()
    async with site.sessions() as s:
        stored = (await s.execute(select(DecisionEvent.source, DecisionEvent.granted))).all()
    assert [tuple(r) for r in stored] == [("mqtt", True)]


async def test_with_accessd_away_the_edge_decides_from_its_cache(
    site: Site,  # noqa: F811
    edge: tuple[EdgeController, SimulatedReader],
) -> None:
    controller, reader = edge
    await site.gateway.stop()
    reader.insert_card(VirtualPivCard(site.card))
    reader.present_card(128, uuid.UUID(site.card.card_uuid).bytes)
    await until(lambda: bool(controller.results))
    result = controller.results[0]
    assert result.granted and result.offline
