"""PIV over OSDP: the card at a simulated OSDP reader, reached through transparent mode
(osdp_XWR/XRD) by the same card edge as in a PC/SC reader; a PKI-CAK challenge signed by
the card travels the bus, in the clear and in a secure session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.card_transport import OsdpCardError, OsdpCardTransport
from drivers.osdp.transport import SerialLine
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge, verify_challenge
from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial, TestPki
from tests.waiting import until

KEY = bytes(range(0x40, 0x50))
WAIT = 5.0


@pytest.fixture(scope="module")
def material() -> CardMaterial:
    return TestPki.create().issue_card(algorithms={"9a": "p256", "9e": "p256"}, pin="123456")


@pytest.fixture(params=["plain", "secure"])
async def bus(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[ControlPanel, SimulatedReader]]:
    secure = request.param == "secure"
    pty = PtyLine()
    reader = SimulatedReader(1, scbk=KEY if secure else None, require_secure=secure)
    ReaderBus(pty, [reader])
    pty.start()
    line = await SerialLine.open(pty.slave_path)
    cp = ControlPanel(line, [PdConfig(1, scbk=KEY if secure else None)], poll_interval=0.01)
    cp.start()
    await until(lambda: cp.pds[1].online and (cp.pds[1].secure or not secure))
    yield cp, reader
    await cp.close()
    await pty.close()


async def test_a_pki_cak_challenge_reaches_the_card_at_an_osdp_reader(
    bus: tuple[ControlPanel, SimulatedReader], material: CardMaterial
) -> None:
    cp, reader = bus
    reader.insert_card(VirtualPivCard(material))
    transport = OsdpCardTransport(cp, 1)
    await transport.open()
    try:
        piv = PivCard(transport)
        await piv.select()
        chuid = await piv.read_chuid()
        cert = await piv.read_certificate("9e")  # several GET RESPONSE rounds on the bus
        nonce = os.urandom(32)
        signature = await sign_challenge(piv, "9e", cert, nonce)
        verify_challenge(cert, nonce, signature)
        assert chuid.card_uuid and reader.transparent_mode == 1
    finally:
        await transport.close()
    assert reader.transparent_mode == 0


async def test_no_card_in_the_field_and_no_transparent_mode_are_errors(
    bus: tuple[ControlPanel, SimulatedReader],
) -> None:
    cp, _ = bus
    transport = OsdpCardTransport(cp, 1)
    with pytest.raises(OsdpCardError):
        await transport.transmit(bytes.fromhex("00a4040000"))  # not opened
    await transport.open()
    try:
        with pytest.raises(OsdpCardError):
            await transport.transmit(bytes.fromhex("00a4040000"))  # no card: CardPresent
    finally:
        await transport.close()
