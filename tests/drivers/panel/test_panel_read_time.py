"""A card read that carries its own time is asked of accessd, and decided offline, as of
that time; a read without one takes the panel's clock. This is how a simulated panel runs
at another time (`accessd demo --at`) through the real request path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.mqtt.messages import (
    CredentialRef,
    DecideReply,
    DecideRequest,
    OfflineDoor,
    decode,
    encode,
)
from drivers.mqtt.topics import PanelTopics
from drivers.panel.buffer import EventBuffer
from drivers.panel.clock import ManualClock
from drivers.panel.doors import DoorConfig
from drivers.panel.errors import LinkDown
from drivers.panel.link import ConnectionHandler, MessageHandler, PanelLink
from drivers.panel.session import PanelConfig, PanelSession, Presentation
from tests.drivers.panel.panel_helpers import entry, snapshot

TOPICS = PanelTopics("hq", "p1")
MONDAY_10_NY = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
SATURDAY_10_NY = datetime(2025, 3, 8, 15, 0, tzinfo=UTC)
UUID = "0f4a5b6c-1111-2222-3333-444455556666"
CARD = Presentation(reader=1, credential=CredentialRef(kind="card_uuid", value=UUID))


class AnsweringLink(PanelLink):
    """A broker in memory that grants every decision request and keeps the requests."""

    def __init__(self) -> None:
        self.up = False
        self.requests: list[DecideRequest] = []
        self._messages: list[MessageHandler] = []
        self._connections: list[ConnectionHandler] = []

    @property
    def connected(self) -> bool:
        return self.up

    async def start(self) -> None:
        self.set_up(True)

    async def close(self) -> None:
        self.up = False

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        await asyncio.sleep(0)
        if not self.up:
            raise LinkDown("down")
        if topic == TOPICS.leaf("req/decide"):
            request = decode(DecideRequest, payload)
            self.requests.append(request)
            reply = encode(DecideReply(id=request.id, granted=True, reason="granted"))
            asyncio.get_running_loop().call_soon(self._deliver, TOPICS.rsp, reply)

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        return None

    def on_message(self, handler: MessageHandler) -> None:
        self._messages.append(handler)

    def on_connection(self, handler: ConnectionHandler) -> None:
        self._connections.append(handler)

    def set_up(self, up: bool) -> None:
        self.up = up
        for handler in self._connections:
            handler(up)

    def _deliver(self, topic: str, payload: bytes) -> None:
        for handler in self._messages:
            handler(topic, payload)


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[tuple[PanelSession, AnsweringLink]]:
    link = AnsweringLink()
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        decide_timeout=0.5,
        request_timeout=0.05,
    )
    session = PanelSession(
        config, link, EventBuffer(tmp_path / "p1.db"), clock=ManualClock(MONDAY_10_NY)
    )
    # Offline, the card opens door 1 (no factor demanded) on weekdays 08:00-18:00 in New York.
    session.cache.apply_snapshot(
        snapshot(
            [entry("card_uuid", UUID, {"1": "weekdays"})],
            doors={"1": OfflineDoor(factors=0, offline_allowed=True)},
        )
    )
    await session.start()
    yield session, link
    await session.close()
    session.buffer.close()


async def test_a_read_without_a_time_is_asked_at_the_panels_clock(
    panel: tuple[PanelSession, AnsweringLink],
) -> None:
    session, link = panel
    assert (await session.present(CARD)).granted
    assert link.requests[-1].at == MONDAY_10_NY


async def test_a_read_with_its_own_time_is_asked_at_that_time(
    panel: tuple[PanelSession, AnsweringLink],
) -> None:
    session, link = panel
    result = await session.present(
        Presentation(reader=1, credential=CARD.credential, at=SATURDAY_10_NY)
    )
    assert result.granted and not result.offline
    assert link.requests[-1].at == SATURDAY_10_NY


async def test_offline_the_cache_decides_as_of_the_reads_time(
    panel: tuple[PanelSession, AnsweringLink],
) -> None:
    session, link = panel
    link.set_up(False)
    assert (await session.present(CARD)).granted  # Monday 10:00 by the panel's clock
    weekend = await session.present(
        Presentation(reader=1, credential=CARD.credential, at=SATURDAY_10_NY)
    )
    assert (weekend.granted, weekend.reason, weekend.offline) == (
        False,
        "offline_outside_schedule",
        True,
    )
