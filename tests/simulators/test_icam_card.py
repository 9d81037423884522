"""ICAM test cards served as virtual PIV cards: our card-edge client reads back exactly the
card folder's files and the card signs with the folder's keys, in process and through
pcscd+vpcd."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives import serialization

from drivers.errors import FileNotFound, SignatureInvalid, WrongPin
from drivers.piv import objects, tlv
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge, verify_challenge
from simulators.icam_card import CERTIFICATE_FILES, PIN, icam_card, load_certificate
from simulators.loopback import LoopbackTransport
from simulators.piv_card import PivReaderSlot
from tests.drivers.piv.test_piv_vpcd import _SKIP as PCSC_MISSING
from tests.drivers.piv.test_piv_vpcd import READER_0, VPCD_SETTLE, connect
from tests.paths import ICAM_CARDS, ICAM_MISSING

pytestmark = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")

GOLDEN = ICAM_CARDS / "cards" / "01_Golden_PIV"
NONCE = b"icam nonce"


async def selected(folder_name: str) -> PivCard:
    card = PivCard(LoopbackTransport(icam_card(ICAM_CARDS / "cards" / folder_name)))
    await card.select()
    return card


async def assert_serves_the_folder(card: PivCard) -> None:
    chuid = await card.get_data(objects.CHUID)
    assert chuid == (GOLDEN / "8 - CHUID Object").read_bytes()
    assert await card.read_security_object() == (GOLDEN / "2 - Security Object").read_bytes()
    assert await card.get_data(objects.FACIAL_IMAGE) == (GOLDEN / "10 - Face Object").read_bytes()
    discovery = tlv.encode(objects.DISCOVERY_TAG, await card.get_data(objects.DISCOVERY))
    assert discovery == (GOLDEN / "1 - Discovery Object").read_bytes()
    for slot, stem in CERTIFICATE_FILES.items():
        expected = load_certificate(GOLDEN / f"{stem}.crt")
        assert await card.read_certificate(slot) == expected
    cert = await card.read_certificate("9e")
    verify_challenge(cert, NONCE, await sign_challenge(card, "9e", cert, NONCE))
    await card.verify_pin(PIN)
    cert = await card.read_certificate("9a")
    verify_challenge(cert, NONCE, await sign_challenge(card, "9a", cert, NONCE))


async def test_the_golden_card_serves_its_files_and_signs_with_its_keys() -> None:
    await assert_serves_the_folder(await selected("01_Golden_PIV"))


async def test_a_card_built_with_a_foreign_key_signs_with_it() -> None:
    card = await selected("23_Public_Private_Key_mismatch")
    cert = await card.read_certificate("9e")
    signature = await sign_challenge(card, "9e", cert, NONCE)
    with pytest.raises(SignatureInvalid):
        verify_challenge(cert, NONCE, signature)


async def test_missing_objects_are_not_found_and_pins_follow_the_discovery_object() -> None:
    no_discovery = await selected("25_Disco_Object_Not_Present")
    with pytest.raises(FileNotFound):
        await no_discovery.read_discovery()
    no_security_object = await selected("55_FIPS_201-2_Missing_Security_Object")
    with pytest.raises(FileNotFound):
        await no_security_object.read_security_object()
    global_primary = await selected("28_Disco_Object_Present_Global_PIN_Primary")
    assert (await global_primary.read_discovery()).pin_usage_policy == b"\x60\x20"
    global_verify = bytes.fromhex("00200000") + bytes((8,)) + PIN.encode().ljust(8, b"\xff")
    assert await global_primary.transport.transmit(global_verify) == b"\x90\x00"
    app_only = await selected("26_Disco_Object_Present_App_PIN_Only")
    assert (await app_only.transport.transmit(global_verify))[-2:] == b"\x6a\x88"
    with pytest.raises(WrongPin):
        await app_only.verify_pin("654321")


@pytest.mark.vpcd
@pytest.mark.skipif(PCSC_MISSING is not None, reason=PCSC_MISSING or "")
async def test_the_golden_card_read_through_pcscd() -> None:
    slot = PivReaderSlot(READER_0[1], icam_card(GOLDEN))
    await slot.insert()
    try:
        transport = await connect(READER_0[0])
        try:
            card = PivCard(transport)
            await card.select()
            await assert_serves_the_folder(card)
        finally:
            await transport.close()
    finally:
        await slot.remove()
        await asyncio.sleep(VPCD_SETTLE)


async def test_certificates_are_stored_in_the_certificate_container() -> None:
    card = await selected("01_Golden_PIV")
    der = load_certificate(GOLDEN / f"{CERTIFICATE_FILES['9a']}.crt").public_bytes(
        serialization.Encoding.DER
    )
    content = await card.get_data(objects.slot("9a").object_id)
    items = tlv.decode(content)
    assert [item.tag for item in items] == [objects.CERT, objects.CERT_INFO, objects.EDC]
    assert tlv.find(items, objects.CERT).value == der  # type: ignore[union-attr]
