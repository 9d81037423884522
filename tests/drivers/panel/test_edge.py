"""drivers.edge: OSDP readers on a pty, driven by the edge controller, deciding through a
panel session (accessd played by an in-memory broker, as in test_panel_session.py;
the whole chain against Mosquitto and the gateway is in tests/e2e/test_edge_gateway.py)."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.edge.cards import credential_of
from drivers.edge.controller import GREEN, RED, EdgeController, ReaderWiring
from drivers.mqtt.messages import (
    ChallengeReply,
    ChallengeRequest,
    DecideReply,
    DecideRequest,
    Message,
    decode,
)
from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.transport import SerialLine
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.session import PanelConfig, PanelSession
from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from tests.drivers.panel.test_panel_session import TOPICS, FakeLink
from tests.waiting import until

CARD_UUID = uuid.UUID("0f4a5b6c-1111-2222-3333-444455556666")


@dataclass
class Edge:
    controller: EdgeController
    link: FakeLink
    readers: dict[int, SimulatedReader]
    bus: ReaderBus
    granted: set[str]
    #: What accessd was asked (the PIV fixture's responder keeps them).
    seen: list[DecideRequest] = field(default_factory=list)


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    pty = PtyLine()
    readers = {1: SimulatedReader(1), 2: SimulatedReader(2)}
    bus = ReaderBus(pty, list(readers.values()))
    pty.start()
    line = await SerialLine.open(pty.slave_path)
    cp = ControlPanel(
        line, [PdConfig(1), PdConfig(2)], poll_interval=0.01, offline_after=0.5, offline_retry=0.1
    )
    link = FakeLink()
    granted: set[str] = set()

    def accessd(topic: str, payload: bytes) -> Message | None:
        if topic != TOPICS.leaf("req/decide"):
            return None
        req = decode(DecideRequest, payload)
        ok = req.credential is not None and req.credential.value in granted
        return DecideReply(
            id=req.id, granted=ok, reason="granted" if ok else "no_access_level", unlock_seconds=1
        )

    link.responder = accessd
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(11,)), DoorConfig(door=2, readers=(12,))),
        decide_timeout=0.5,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "edge.db"))
    controller = EdgeController(
        cp,
        session,
        [ReaderWiring(1, 11, 1, strike_output=0), ReaderWiring(2, 12, 2, strike_output=0)],
    )
    await controller.start()
    await until(lambda: all(pd.online for pd in cp.pds.values()))
    yield Edge(controller, link, readers, bus, granted)
    await controller.close()
    session.buffer.close()
    await pty.close()


def led_color(reader: SimulatedReader) -> int:
    return reader.state.led[5]  # the temporary on-colour of the first LED record


async def test_a_granted_card_unlocks_lights_green_and_relocks(edge: Edge) -> None:
    edge.granted.add(str(CARD_UUID))
    edge.readers[1].present_card(128, CARD_UUID.bytes)
    await until(lambda: bool(edge.controller.results))
    result = edge.controller.results[0]
    assert result.granted and not result.offline and result.door == 1
    await until(lambda: edge.readers[1].state.outputs.get(0) == 1)
    await until(lambda: bool(edge.readers[1].state.led) and bool(edge.readers[1].state.buzzer))
    assert led_color(edge.readers[1]) == GREEN and edge.readers[1].state.buzzer[4] == 1
    request = decode(DecideRequest, edge.link.on("req/decide")[0])
    assert request.reader == 11 and request.credential is not None
    assert request.credential.kind == "card_uuid" and request.credential.value == str(CARD_UUID)
    # unlock_seconds=1: the door relocks and the strike output drops again.
    await until(lambda: edge.readers[1].state.outputs.get(0) == 0, 4)


async def test_a_denied_card_lights_red_and_leaves_the_door_locked(edge: Edge) -> None:
    edge.readers[2].present_card(128, uuid.uuid4().bytes)
    await until(lambda: bool(edge.controller.results))
    assert not edge.controller.results[0].granted
    await until(lambda: bool(edge.readers[2].state.buzzer))
    assert led_color(edge.readers[2]) == RED and edge.readers[2].state.buzzer[4] == 3
    assert edge.readers[2].state.outputs.get(0, 0) == 0


async def test_tamper_and_a_reader_going_offline_become_events(edge: Edge) -> None:
    edge.readers[2].set_tamper(True)
    await until(lambda: any(e.type == "tamper" for e in edge.link.events()))
    del edge.bus.readers[2]  # reader 2 stops answering
    await until(
        lambda: any(
            e.type == "reader_offline" and e.data.get("alarm") is True for e in edge.link.events()
        ),
        4,
    )
    tamper = next(e for e in edge.link.events() if e.type == "tamper")
    assert tamper.reader == 12 and tamper.door == 2 and tamper.data["alarm"] is True


async def test_an_unreadable_card_is_an_event_not_a_decision(edge: Edge) -> None:
    edge.readers[1].present_card(13, b"\xff\xff")
    await until(lambda: edge.controller.unreadable == 1)
    await asyncio.sleep(0.05)
    assert edge.controller.results == []
    await until(lambda: any(e.type == "card" for e in edge.link.events()))


def test_card_data_maps_to_credentials() -> None:
    ref = credential_of(128, CARD_UUID.bytes, "{facility}:{number}")
    assert ref is not None and ref.kind == "card_uuid" and ref.value == str(CARD_UUID)
    fascn = bytes(range(25))
    ref = credential_of(200, fascn, "{facility}:{number}")
    assert ref is not None and ref.kind == "fasc_n" and ref.value == fascn.hex()
    assert credential_of(128, b"\x00" * 8, "x") is None  # fewer bytes than bits


async def test_a_wiegand_card_is_a_badge_number(edge: Edge) -> None:
    from drivers.osdp import wiegand

    bits, data = wiegand.encode(wiegand.WiegandFormat.H10301, 17, 12345)
    edge.granted.add("17:12345")
    edge.readers[1].present_card(bits, data)
    await until(lambda: bool(edge.controller.results))
    assert edge.controller.results[0].granted
    request = decode(DecideRequest, edge.link.on("req/decide")[0])
    assert request.credential is not None and request.credential.kind == "badge_number"
    # One bit flipped: the parity fails and nothing is decided on a misread.
    flipped = bytes([data[0] ^ 0x10, *data[1:]])
    edge.readers[1].present_card(bits, flipped)
    await until(lambda: edge.controller.unreadable == 1)


def test_the_edge_command_refuses_bad_arguments_and_a_missing_port(tmp_path: Path) -> None:
    from accessd.cli.main import main

    base = ["edge", "--site", "hq", "--panel", "e1", "--state-dir", str(tmp_path)]
    assert main([*base, "--serial", "/dev/null", "--reader", "1:x:1"]) == 2
    assert main([*base, "--serial", "/dev/null", "--reader", "200:1:1"]) == 2
    missing = str(tmp_path / "no-such-tty")
    assert main([*base, "--serial", missing, "--reader", "1:11:1"]) == 3


@pytest.fixture(scope="module")
def piv_material() -> Any:
    from simulators.pki import TestPki

    return TestPki.create().issue_card(algorithms={"9a": "p256", "9e": "p256"}, pin="123456")


@pytest.fixture
async def piv_edge(tmp_path: Path) -> AsyncIterator[Edge]:
    pty = PtyLine()
    readers = {1: SimulatedReader(1)}
    bus = ReaderBus(pty, list(readers.values()))
    pty.start()
    line = await SerialLine.open(pty.slave_path)
    cp = ControlPanel(line, [PdConfig(1)], poll_interval=0.01)
    link = FakeLink()
    seen: list[DecideRequest] = []
    challenges = [os.urandom(32) for _ in range(8)]

    def accessd(topic: str, payload: bytes) -> Message | None:
        if topic == TOPICS.leaf("req/challenge"):
            req = decode(ChallengeRequest, payload)
            given = [base64.b64encode(challenges.pop()).decode() for _ in range(req.count)]
            expires = datetime.now(UTC) + timedelta(seconds=30)
            return ChallengeReply(id=req.id, challenges=given, expires_at=expires)
        if topic != TOPICS.leaf("req/decide"):
            return None
        decide = decode(DecideRequest, payload)
        seen.append(decide)
        ok = decide.proof is not None
        return DecideReply(id=decide.id, granted=ok, reason="granted" if ok else "pki_required")

    link.responder = accessd
    config = PanelConfig(site="hq", panel="p1", doors=(DoorConfig(door=1, readers=(11,)),))
    session = PanelSession(config, link, EventBuffer(tmp_path / "piv.db"))
    controller = EdgeController(cp, session, [ReaderWiring(1, 11, 1, piv=True)])
    await controller.start()
    await until(lambda: cp.pds[1].online and session.challenges_held(11) > 0)
    yield Edge(controller, link, readers, bus, set(), seen)
    await controller.close()
    session.buffer.close()
    await pty.close()


async def test_a_piv_card_at_an_osdp_reader_is_authenticated_with_pki_cak(
    piv_edge: Edge, piv_material: Any
) -> None:
    from simulators.piv_card import VirtualPivCard

    card = VirtualPivCard(piv_material)
    reader = piv_edge.readers[1]
    reader.insert_card(card)
    reader.present_card(128, uuid.UUID(piv_material.card_uuid).bytes)
    await until(lambda: bool(piv_edge.controller.results))
    assert piv_edge.controller.results[0].granted
    request = piv_edge.seen[0]
    assert request.proof is not None and request.proof.mechanism == "pki_cak"
    assert "pki_cak" in request.evidence and "pin" not in request.evidence


async def test_a_pin_typed_before_the_card_is_checked_by_the_card(
    piv_edge: Edge, piv_material: Any
) -> None:
    from simulators.piv_card import VirtualPivCard

    reader = piv_edge.readers[1]
    reader.insert_card(VirtualPivCard(piv_material))
    reader.press_keys("123456#")
    await until(lambda: piv_edge.controller.pins.get(1) == "123456")
    reader.present_card(128, uuid.UUID(piv_material.card_uuid).bytes)
    await until(lambda: bool(piv_edge.controller.results))
    request = piv_edge.seen[0]
    assert request.proof is not None and request.proof.mechanism == "pki_auth"
    assert "pin" in request.evidence


async def test_a_37_bit_card_and_a_piv_fasc_n_from_the_simulator(edge: Edge) -> None:
    from drivers.osdp.wiegand import WiegandFormat

    edge.granted.update({"4242:123456"})
    edge.readers[1].present_wiegand(WiegandFormat.H10304, 4242, 123456)
    await until(lambda: len(edge.controller.results) == 1)
    assert edge.controller.results[0].granted
    edge.readers[2].present_piv(bytes(range(25)))  # a FASC-N's 25 bytes
    await until(lambda: len(edge.link.on("req/decide")) == 2)
    request = decode(DecideRequest, edge.link.on("req/decide")[1])
    assert request.credential is not None and request.credential.kind == "fasc_n"
