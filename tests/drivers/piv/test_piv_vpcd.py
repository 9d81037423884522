"""The PIV client and virtual PIV card through the real stack: vpcd → pcscd → pyscard.

Needs pcscd with vsmartcard's vpcd on 35963/35964 (tests/services.sh starts them); skipped,
saying so, when they are not there.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.errors import (
    AuthenticationBlocked,
    DriverError,
    FileNotFound,
    PcscError,
    SecurityStatusNotSatisfied,
    WrongPin,
)
from drivers.piv import objects
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge, verify_challenge
from simulators.piv_card import PivReaderSlot, VirtualPivCard
from simulators.pki import CardMaterial, TestPki

try:
    from drivers.pcsc import PcscTransport, list_readers
except ImportError:  # pragma: no cover - the pcsc extra is not installed
    PcscTransport = None  # type: ignore[assignment,misc]

READER_0 = ("Virtual PCD 00 00", 35963)
READER_1 = ("Virtual PCD 00 01", 35964)
PIN = "123456"
NONCE = b"vpcd nonce"
WAIT = 10.0
VPCD_SETTLE = 0.6  # vpcd takes about half a second to accept a card again after a hang-up
# pcscd powers a new card on, and off again at its next presence poll (0.4 s) unless it is in
# use; a client that connects inside that window can see the card power-cycled (reset)
# under it. Waiting past the poll avoids the race.
PCSCD_IDLE_POWER_OFF = 0.5


def port_listening(port: int) -> bool:
    """Whether something listens on ``port``, read from /proc so vpcd sees no client.

    Connecting would look to vpcd like a card coming and going, and it then refuses
    clients for about half a second, which made other modules' probes fail.
    """
    found = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    if found:
        return False
    try:  # no /proc: fall back to connecting
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _unavailable() -> str | None:
    if PcscTransport is None:
        return "pyscard is not installed (pip install .[pcsc])"
    for _, port in (READER_0, READER_1):
        if not port_listening(port):
            return f"vpcd is not listening on 127.0.0.1:{port} (run tests/services.sh)"
    try:
        names = asyncio.run(list_readers())
    except DriverError as exc:
        return f"pcscd is not reachable: {exc}"
    if not any(n.startswith(READER_0[0]) for n in names):
        return f"pcscd lists no {READER_0[0]!r} reader: {names}"
    return None


_SKIP = _unavailable()
pytestmark = [pytest.mark.vpcd, pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]


async def connect(reader: str) -> PcscTransport:
    """Connect once pcscd has noticed the inserted card and is done powering it off."""
    await asyncio.sleep(PCSCD_IDLE_POWER_OFF)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await PcscTransport.connect(reader)
        except PcscError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture(scope="module")
def material(pki: TestPki) -> CardMaterial:
    return pki.issue_card(algorithms={"9a": "rsa2048", "9c": "p384", "9e": "p256"}, pin=PIN)


@pytest.fixture
async def slot0(material: CardMaterial) -> AsyncIterator[PivReaderSlot]:
    slot = PivReaderSlot(READER_0[1], VirtualPivCard(material))
    await slot.insert()
    try:
        yield slot
    finally:
        await slot.remove()
        await asyncio.sleep(VPCD_SETTLE)


@pytest.fixture
async def card(slot0: PivReaderSlot) -> AsyncIterator[PivCard]:
    transport = await connect(READER_0[0])
    try:
        piv = PivCard(transport)
        await piv.select()
        yield piv
    finally:
        await transport.close()


async def test_objects_read_through_pcscd(card: PivCard, material: CardMaterial) -> None:
    chuid = await card.read_chuid()
    assert (chuid.fascn, chuid.card_uuid) == (material.fascn, material.card_uuid)
    for slot in ("9a", "9c", "9e"):
        assert await card.read_certificate(slot) == material.certificates[slot]
    assert (await card.read_discovery()).aid == objects.AID
    content = await card.read_security_object()
    assert objects.tlv.encode(objects.CONTAINER, content) == material.security_object
    with pytest.raises(FileNotFound):
        await card.get_data(objects.PRINTED_INFO)


async def test_rsa_9a_chained_through_pcscd_after_pin(card: PivCard, slot0: PivReaderSlot) -> None:
    cert = await card.read_certificate("9a")
    with pytest.raises(SecurityStatusNotSatisfied):
        await sign_challenge(card, "9a", cert, NONCE)
    await card.verify_pin(PIN)
    before = slot0.apdus
    verify_challenge(cert, NONCE, await sign_challenge(card, "9a", cert, NONCE))
    assert slot0.apdus - before == 3  # two chained parts and one GET RESPONSE


async def test_ec_9e_without_pin_and_9c_p384_with_it(card: PivCard) -> None:
    cert = await card.read_certificate("9e")
    verify_challenge(cert, NONCE, await sign_challenge(card, "9e", cert, NONCE))
    cert = await card.read_certificate("9c")
    await card.verify_pin(PIN)
    verify_challenge(cert, NONCE, await sign_challenge(card, "9c", cert, NONCE))


async def test_wrong_pin_counts_down_and_blocks_through_pcscd(card: PivCard) -> None:
    for left in (2, 1, 0):
        with pytest.raises(WrongPin) as caught:
            await card.verify_pin("999999")
        assert caught.value.tries_left == left
    with pytest.raises(AuthenticationBlocked):
        await card.verify_pin(PIN)


async def test_failed_select_of_another_applet_keeps_piv(
    card: PivCard, material: CardMaterial
) -> None:
    raw = await card.transport.transmit(bytes.fromhex("00A4040007A000000151000000"))
    assert raw == b"\x6a\x82"
    assert (await card.read_chuid()).card_uuid == material.card_uuid


async def test_removal_ends_the_session_and_reinsertion_clears_the_pin(
    card: PivCard, slot0: PivReaderSlot
) -> None:
    await card.verify_pin(PIN)
    with pytest.raises(WrongPin):
        await card.verify_pin("111111")  # leaves 2 tries and clears the verified state
    await card.verify_pin(PIN)
    await slot0.remove()
    with pytest.raises(PcscError):
        await card.transport.transmit(bytes.fromhex("00A4040005A000000308"))
    await card.transport.close()
    await asyncio.sleep(VPCD_SETTLE)
    await slot0.insert()
    transport = await connect(READER_0[0])
    try:
        virtual = slot0.card
        assert isinstance(virtual, VirtualPivCard)
        assert not virtual.selected and not virtual.pin_verified  # powered up afresh
        again = PivCard(transport)
        await again.select()
        status = await again.pin_status()
        assert not status.verified  # the power cycle cleared the security status
        assert status.tries_left == 3
    finally:
        await transport.close()


async def test_two_cards_in_two_readers_at_once(pki: TestPki) -> None:
    first = pki.issue_card(name="First Holder", algorithms={"9e": "p256"})
    second = pki.issue_card(name="Second Holder", algorithms={"9e": "p384"})
    slots = [
        PivReaderSlot(READER_0[1], VirtualPivCard(first)),
        PivReaderSlot(READER_1[1], VirtualPivCard(second)),
    ]
    for slot in slots:
        await slot.insert()
    try:
        transports = [await connect(READER_0[0]), await connect(READER_1[0])]
        try:
            cards = [PivCard(t) for t in transports]
            for piv in cards:
                await piv.select()
            uuids = [(await piv.read_chuid()).card_uuid for piv in cards]
            assert uuids == [first.card_uuid, second.card_uuid]
            for piv in cards:
                cert = await piv.read_certificate("9e")
                verify_challenge(cert, NONCE, await sign_challenge(piv, "9e", cert, NONCE))
        finally:
            for t in transports:
                await t.close()
    finally:
        for slot in slots:
            await slot.remove()
        await asyncio.sleep(VPCD_SETTLE)
