"""The enrollment station's card read, on ICAM test cards served as virtual cards: every
object the integrity checks need is read (those behind the PIN only with it), the PIN goes
to the reference the discovery object names, and what is read hashes as the card's
security object says."""

from __future__ import annotations

import pytest

from accessd.authn.challenges import ChallengeBook
from accessd.enrollment.reading import CardReading, read_card
from accessd.validation.chuid import verify_signed_chuid
from accessd.validation.security_object import check_data_group_hashes, verify_security_object
from drivers.piv import objects, tlv
from drivers.piv.cardedge import PivCard
from drivers.piv.chuid import split_signed
from drivers.transport import CardTransport
from simulators.icam_card import PIN, icam_card
from simulators.loopback import LoopbackTransport
from tests.paths import ICAM_CARDS, ICAM_MISSING

pytestmark = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")

INS_VERIFY = 0x20


class Recording(CardTransport):
    """A transport that keeps every command APDU it passes on."""

    def __init__(self, inner: CardTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    async def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return await self.inner.transmit(apdu)

    async def close(self) -> None:
        await self.inner.close()

    def verify_references(self) -> set[int]:
        return {a[3] for a in self.sent if a[1] == INS_VERIFY and len(a) > 5}


async def _read(name: str, pin: str | None) -> tuple[CardReading, Recording]:
    transport = Recording(LoopbackTransport(icam_card(ICAM_CARDS / "cards" / name)))
    return await read_card(transport, ChallengeBook(), pin=pin), transport


async def test_with_the_pin_every_signed_object_is_read_and_hashes_as_the_card_says() -> None:
    reading, transport = await _read("01_Golden_PIV", PIN)
    folder = ICAM_CARDS / "cards" / "01_Golden_PIV"
    assert reading.facial_image == (folder / "10 - Face Object").read_bytes()
    assert reading.fingerprints == (folder / "9 - Fingerprints").read_bytes()
    assert reading.printed_information == (folder / "11 - Printed Information").read_bytes()
    assert reading.ccc == (folder / "7 - CCC").read_bytes()
    assert reading.discovery == tlv.decode_one((folder / "1 - Discovery Object").read_bytes()).value
    signer = verify_signed_chuid(split_signed(tlv.decode_one(reading.chuid).value))
    verified = verify_security_object(
        reading.security_object, required=True, known_signers=[signer]
    )
    assert verified is not None
    assert check_data_group_hashes(verified, reading.objects_read()).matched == (1, 2, 3, 4)
    assert transport.verify_references() == {objects.PIV_PIN}


async def test_without_the_pin_the_objects_behind_it_are_not_read() -> None:
    reading, transport = await _read("01_Golden_PIV", None)
    assert (reading.facial_image, reading.fingerprints, reading.printed_information) == (
        None,
        None,
        None,
    )
    assert set(reading.objects_read()) == {objects.CHUID, objects.CCC, objects.DISCOVERY}
    assert transport.verify_references() == set()


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("25_Disco_Object_Not_Present", objects.PIV_PIN),
        ("26_Disco_Object_Present_App_PIN_Only", objects.PIV_PIN),
        ("27_Disco_Object_Present_App_PIN_Primary", objects.PIV_PIN),
        ("28_Disco_Object_Present_Global_PIN_Primary", objects.GLOBAL_PIN),
    ],
)
async def test_the_pin_goes_to_the_reference_the_discovery_object_names(
    name: str, reference: int
) -> None:
    reading, transport = await _read(name, PIN)
    assert transport.verify_references() == {reference}
    assert len(reading.proofs) == 2  # PKI-AUTH after the PIN, besides PKI-CAK
    if name.startswith("25_"):
        assert reading.discovery is None


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("25_Disco_Object_Not_Present", objects.PIV_PIN),
        ("28_Disco_Object_Present_Global_PIN_Primary", objects.GLOBAL_PIN),
    ],
)
async def test_a_reader_picks_the_pin_from_the_discovery_object(name: str, reference: int) -> None:
    transport = Recording(LoopbackTransport(icam_card(ICAM_CARDS / "cards" / name)))
    card = PivCard(transport)
    await card.select()
    chosen = objects.pin_reference(await card.read_discovery_if_any())
    assert chosen == reference
    await card.verify_pin(PIN, chosen)
    assert (await card.pin_status(chosen)).verified
    assert transport.verify_references() == {reference}
