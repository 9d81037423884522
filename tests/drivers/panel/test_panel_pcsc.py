"""A simulated door reader that reads its virtual PIV card through pcscd (vpcd + pyscard),
not in-process: the panel gets the same presentation, its proof verifies, and the offline
cache accepts it."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from drivers.mqtt.messages import (
    ChallengeReply,
    ChallengeRequest,
    DecideRequest,
    Message,
    decode,
)
from drivers.panel.buffer import EventBuffer
from drivers.panel.clock import ManualClock
from drivers.panel.doors import DoorConfig
from drivers.panel.session import PanelConfig, PanelSession
from drivers.piv.challenge import verify_challenge
from simulators.panel.pcsc_reader import read_card_over_pcsc
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial, TestPki
from tests.drivers.panel.panel_helpers import entry, snapshot
from tests.drivers.panel.test_panel_session import (
    MONDAY_MORNING,
    TOPICS,
    FakeLink,
    answer_decisions,
)
from tests.drivers.piv.test_piv_vpcd import _SKIP as PCSC_MISSING  # the PC/SC tests' own probe
from tests.waiting import until

pytestmark = [
    pytest.mark.vpcd,
    pytest.mark.skipif(PCSC_MISSING is not None, reason=PCSC_MISSING or ""),
]
VPCD_PORT, READER = 35964, "Virtual PCD 00 01"


@pytest.fixture(scope="module")
def card() -> CardMaterial:
    return TestPki.create("http://127.0.0.1:1").issue_card(algorithms={"9a": "p256", "9e": "p256"})


@pytest.fixture
async def panel(tmp_path: Path, card: CardMaterial) -> AsyncIterator[tuple[PanelSession, FakeLink]]:
    link = FakeLink()
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        decide_timeout=0.2,
        request_timeout=0.2,
    )
    session = PanelSession(
        config, link, EventBuffer(tmp_path / "p1.db"), clock=ManualClock(MONDAY_MORNING)
    )
    sha = card.certificates["9e"].fingerprint(hashes.SHA256()).hex()
    session.cache.apply_snapshot(snapshot([entry("cert_sha256", sha, {"1": "always"})]))
    await session.start()
    await until(lambda: bool(link.on("birth")))
    yield session, link
    await session.close()
    session.buffer.close()


async def test_a_card_read_through_pcsc_gives_accessd_a_proof_that_verifies(
    panel: tuple[PanelSession, FakeLink], card: CardMaterial
) -> None:
    session, link = panel
    decisions = answer_decisions(True)

    def accessd(topic: str, payload: bytes) -> Message | None:
        # accessd's side: challenges for the reader, then the decision.
        if topic == TOPICS.leaf("req/challenge"):
            asked = decode(ChallengeRequest, payload)
            return ChallengeReply(
                id=asked.id,
                challenges=[base64.b64encode(os.urandom(45)).decode() for _ in range(asked.count)],
                expires_at=MONDAY_MORNING + timedelta(minutes=5),
            )
        return decisions(topic, payload)

    link.responder = accessd
    # The panel asked before this accessd was listening; it asks again after its backoff.
    await until(lambda: session.challenges_held(1) > 0, 6)
    presentation = await read_card_over_pcsc(
        session, 1, VirtualPivCard(card), vpcd_port=VPCD_PORT, reader_name=READER
    )
    result = await session.present(presentation)
    assert (result.granted, result.offline) == (True, False)
    request = decode(DecideRequest, link.on("req/decide")[-1])
    assert request.proof is not None
    cert = x509.load_der_x509_certificate(base64.b64decode(request.proof.certificate))
    assert cert == card.certificates["9e"]
    verify_challenge(
        cert,
        base64.b64decode(request.proof.challenge),
        base64.b64decode(request.proof.signature),
    )
    assert {(i.kind, i.value) for i in presentation.identifiers} == {
        ("card_uuid", card.card_uuid),
        ("fasc_n", card.fascn.hex()),
    }


async def test_offline_the_panel_checks_the_pcsc_read_cards_signature_itself(
    panel: tuple[PanelSession, FakeLink], card: CardMaterial
) -> None:
    session, _link = panel  # no responder: accessd does not answer
    presentation = await read_card_over_pcsc(
        session, 1, VirtualPivCard(card), vpcd_port=VPCD_PORT, reader_name=READER
    )
    result = await session.present(presentation)
    assert (result.granted, result.reason, result.offline) == (True, "offline_granted", True)
    assert card.certificates["9e"].public_bytes(serialization.Encoding.DER)
