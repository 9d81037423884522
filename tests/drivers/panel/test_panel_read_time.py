"""A card read that carries its own time is asked of accessd, and decided offline, as of
that time; a read without one takes the panel's clock. This is how a simulated panel runs
at another time (`accessd demo --at`) through the real request path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.mqtt.messages import (
    CredentialRef,
    DecideReply,
    DecideRequest,
    OfflineDoor,
    decode,
)
from drivers.panel.buffer import EventBuffer
from drivers.panel.clock import ManualClock
from drivers.panel.doors import DoorConfig
from drivers.panel.session import PanelConfig, PanelSession, Presentation
from tests.drivers.panel.panel_helpers import entry, snapshot
from tests.drivers.panel.test_panel_session import TOPICS, FakeLink

MONDAY_10_NY = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
SATURDAY_10_NY = datetime(2025, 3, 8, 15, 0, tzinfo=UTC)
UUID = "0f4a5b6c-1111-2222-3333-444455556666"
CARD = Presentation(reader=1, credential=CredentialRef(kind="card_uuid", value=UUID))


def granting(requests: list[DecideRequest]) -> Callable[[str, bytes], DecideReply | None]:
    """Plays accessd: keeps every decision request and grants it."""

    def answer(topic: str, payload: bytes) -> DecideReply | None:
        if topic != TOPICS.leaf("req/decide"):
            return None
        request = decode(DecideRequest, payload)
        requests.append(request)
        return DecideReply(id=request.id, granted=True, reason="granted")

    return answer


@dataclass
class AnsweringLink:
    """The session tests' in-memory broker, and the requests it granted."""

    link: FakeLink
    requests: list[DecideRequest]

    def set_up(self, up: bool) -> None:
        self.link.set_up(up)


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[tuple[PanelSession, AnsweringLink]]:
    requests: list[DecideRequest] = []
    fake = FakeLink()
    fake.responder = granting(requests)
    link = AnsweringLink(fake, requests)
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        decide_timeout=0.5,
        request_timeout=0.05,
    )
    session = PanelSession(
        config, fake, EventBuffer(tmp_path / "p1.db"), clock=ManualClock(MONDAY_10_NY)
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
