"""The PIV card-edge client against the virtual PIV card, in process (LoopbackTransport)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from drivers.apdu import Command, exchange
from drivers.errors import (
    AuthenticationBlocked,
    CardError,
    FileNotFound,
    PivObjectError,
    SecurityStatusNotSatisfied,
    SignatureInvalid,
    WrongData,
    WrongPin,
)
from drivers.piv import objects
from drivers.piv.cardedge import PinStatus, PivCard, algorithm_for
from drivers.piv.challenge import sign_challenge, signature_input, verify_challenge
from drivers.piv.objects import Algorithm
from drivers.transport import CardTransport
from simulators.loopback import LoopbackTransport
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial, TestPki

PIN = "123456"
NONCE = b"door 7 challenge \x00\x01\x02"
SELECT_OTHER = bytes.fromhex("00A4040007A000000151000000")  # a GlobalPlatform probe


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create()


@pytest.fixture(scope="module")
def material(pki: TestPki) -> CardMaterial:
    return pki.issue_card(
        algorithms={"9a": "rsa2048", "9c": "p384", "9d": "p256", "9e": "p256"}, pin=PIN
    )


@pytest.fixture
def virtual(material: CardMaterial) -> VirtualPivCard:
    return VirtualPivCard(material)


@pytest.fixture
def loop(virtual: VirtualPivCard) -> LoopbackTransport:
    return LoopbackTransport(virtual)


@pytest.fixture
async def card(loop: LoopbackTransport) -> PivCard:
    piv = PivCard(loop)
    await piv.select()
    return piv


async def test_select_answers_the_application_property_template(
    loop: LoopbackTransport,
) -> None:
    template = await PivCard(loop).select()
    assert template.aid_suffix == objects.AID[5:]
    assert template.authority == objects.NIST_RID
    assert set(template.algorithms) == {Algorithm.RSA2048, Algorithm.P256, Algorithm.P384}


async def test_select_by_aid_prefix_works(virtual: VirtualPivCard) -> None:
    answer = virtual.process(bytes.fromhex("00A4040005A00000030800"))
    assert answer[-2:] == b"\x90\x00"
    assert objects.ApplicationTemplate.decode(answer[:-2]).aid_suffix == objects.AID[5:]


async def test_commands_before_select_are_refused(loop: LoopbackTransport) -> None:
    with pytest.raises(CardError) as caught:
        await PivCard(loop).get_data(objects.CHUID)
    assert caught.value.sw == 0x6985


async def test_failed_select_of_another_applet_keeps_piv_selected(
    card: PivCard, virtual: VirtualPivCard, material: CardMaterial
) -> None:
    assert virtual.process(SELECT_OTHER) == b"\x6a\x82"
    assert virtual.selected
    assert (await card.read_chuid()).card_uuid == material.card_uuid


async def test_chuid_ccc_and_discovery_read_back(card: PivCard, material: CardMaterial) -> None:
    chuid = await card.read_chuid()
    assert chuid.fascn == material.fascn
    assert chuid.card_uuid == material.card_uuid
    assert chuid.expires == material.expires
    ccc = await card.read_ccc()
    assert ccc.card_identifier.startswith(bytes.fromhex("A000000116"))
    discovery = await card.read_discovery()
    assert discovery.aid == objects.AID
    assert discovery.pin_satisfies_piv


async def test_security_object_reads_back_whole(card: PivCard, material: CardMaterial) -> None:
    content = await card.read_security_object()
    assert objects.tlv.encode(objects.CONTAINER, content) == material.security_object


@pytest.mark.parametrize("absent", [objects.PRINTED_INFO, objects.FACIAL_IMAGE, b"\x5f\xc1\x20"])
async def test_absent_objects_are_file_not_found(card: PivCard, absent: bytes) -> None:
    with pytest.raises(FileNotFound) as caught:
        await card.get_data(absent)
    assert caught.value.sw == 0x6A82


@pytest.mark.parametrize("slot", ["9a", "9c", "9d", "9e"])
async def test_certificates_read_back_through_get_response(
    card: PivCard, loop: LoopbackTransport, material: CardMaterial, slot: str
) -> None:
    loop.headers.clear()
    cert = await card.read_certificate(slot)
    assert cert == material.certificates[slot]
    der = cert.public_bytes(serialization.Encoding.DER)
    assert len(der) > 256  # so the object cannot fit one short response
    assert bytes.fromhex("00C00000") in loop.headers


async def test_compressed_certificates_are_inflated(material: CardMaterial) -> None:
    piv = PivCard(LoopbackTransport(VirtualPivCard(material, compress_certificates=True)))
    await piv.select()
    raw = await piv.get_data(objects.SLOTS["9a"].object_id)
    assert objects.tlv.find(objects.tlv.decode(raw), objects.CERT_INFO) == objects.tlv.Tlv(
        objects.CERT_INFO, b"\x01"
    )
    assert await piv.read_certificate("9a") == material.certificates["9a"]


async def test_unknown_slot_name_is_a_value_error(card: PivCard) -> None:
    with pytest.raises(ValueError, match="slot"):
        await card.read_certificate("82")


async def test_wrong_pin_counts_down_then_blocks(card: PivCard, virtual: VirtualPivCard) -> None:
    assert await card.pin_tries_left() == 3
    for left in (2, 1, 0):
        with pytest.raises(WrongPin) as caught:
            await card.verify_pin("654321")
        assert caught.value.tries_left == left
    assert await card.pin_status() == PinStatus(verified=False, tries_left=0)
    with pytest.raises(AuthenticationBlocked):
        await card.verify_pin(PIN)  # even the right PIN
    assert virtual.pin_tries == 0


async def test_right_pin_restores_the_counter(card: PivCard) -> None:
    with pytest.raises(WrongPin):
        await card.verify_pin("000000")
    assert await card.pin_tries_left() == 2
    await card.verify_pin(PIN)
    assert await card.pin_status() == PinStatus(verified=True, tries_left=None)
    await card.reset_pin_status()
    assert await card.pin_tries_left() == 3


async def test_pin_is_checked_locally_and_never_echoed(card: PivCard) -> None:
    for bad in ("12345", "123456789", "12a456"):
        with pytest.raises(ValueError) as caught:
            await card.verify_pin(bad)
        assert bad not in str(caught.value)
    assert await card.pin_tries_left() == 3  # nothing reached the card


async def test_reprs_hold_no_secrets(virtual: VirtualPivCard, material: CardMaterial) -> None:
    text = repr(virtual) + repr(virtual.__dict__)
    assert material.pin not in text
    assert material.fascn.hex() not in text


async def test_change_pin_and_unblock_with_puk(card: PivCard, material: CardMaterial) -> None:
    await card.change_pin(PIN, "24681357")
    with pytest.raises(WrongPin):
        await card.verify_pin(PIN)
    await card.verify_pin("24681357")
    for _ in range(3):
        with pytest.raises((WrongPin, AuthenticationBlocked)):
            await card.verify_pin("111111")
    with pytest.raises(WrongPin) as caught:
        await card.unblock_pin("87654321", "999999")
    assert caught.value.tries_left == 2
    await card.unblock_pin(material.puk, "999999")
    assert await card.pin_tries_left() == 3
    await card.verify_pin("999999")


async def test_9a_refuses_without_pin(card: PivCard) -> None:
    cert = await card.read_certificate("9a")
    with pytest.raises(SecurityStatusNotSatisfied) as caught:
        await sign_challenge(card, "9a", cert, NONCE)
    assert caught.value.sw == 0x6982


async def test_pin_status_reset_locks_9a_again(card: PivCard) -> None:
    cert = await card.read_certificate("9a")
    await card.verify_pin(PIN)
    verify_challenge(cert, NONCE, await sign_challenge(card, "9a", cert, NONCE))
    await card.reset_pin_status()
    with pytest.raises(SecurityStatusNotSatisfied):
        await sign_challenge(card, "9a", cert, NONCE)


async def test_9c_needs_the_pin_before_every_signature(card: PivCard) -> None:
    cert = await card.read_certificate("9c")
    await card.verify_pin(PIN)
    verify_challenge(cert, NONCE, await sign_challenge(card, "9c", cert, NONCE))
    with pytest.raises(SecurityStatusNotSatisfied):
        await sign_challenge(card, "9c", cert, NONCE)
    await card.verify_pin(PIN)
    verify_challenge(cert, NONCE, await sign_challenge(card, "9c", cert, NONCE))


async def test_9e_signs_without_pin(card: PivCard) -> None:
    cert = await card.read_certificate("9e")
    verify_challenge(cert, NONCE, await sign_challenge(card, "9e", cert, NONCE))


@pytest.mark.parametrize("algorithm", ["rsa2048", "p256", "p384"])
@pytest.mark.parametrize("slot", ["9a", "9e"])
async def test_challenge_signatures_verify_for_each_key_type(
    pki: TestPki, slot: str, algorithm: str
) -> None:
    material = pki.issue_card(algorithms={slot: algorithm}, pin=PIN)
    loop = LoopbackTransport(VirtualPivCard(material))
    card = PivCard(loop)
    await card.select()
    cert = await card.read_certificate(slot)
    if slot == "9a":
        await card.verify_pin(PIN)
    loop.headers.clear()
    signature = await sign_challenge(card, slot, cert, NONCE)
    verify_challenge(cert, NONCE, signature)
    with pytest.raises(SignatureInvalid):
        verify_challenge(cert, NONCE + b"x", signature)
    if algorithm == "rsa2048":
        # 266 bytes of 7C template go as two chained commands; the 264-byte answer as 61xx.
        key = objects.SLOTS[slot].key
        assert loop.headers[:2] == [bytes((0x10, 0x87, 0x07, key)), bytes((0x00, 0x87, 0x07, key))]
        assert loop.headers[2] == bytes.fromhex("00C00000")


async def test_rsa_input_is_the_pkcs1_block_and_ec_input_the_digest() -> None:
    block = signature_input(Algorithm.RSA2048, NONCE)
    assert len(block) == 256
    assert block.startswith(b"\x00\x01\xff")
    assert block.endswith(hashlib.sha256(NONCE).digest())
    assert signature_input(Algorithm.P256, NONCE) == hashlib.sha256(NONCE).digest()
    assert signature_input(Algorithm.P384, NONCE) == hashlib.sha384(NONCE).digest()


async def test_algorithm_follows_the_certificate(material: CardMaterial) -> None:
    assert algorithm_for(material.certificates["9a"]) is Algorithm.RSA2048
    assert algorithm_for(material.certificates["9c"]) is Algorithm.P384
    assert algorithm_for(material.certificates["9e"]) is Algorithm.P256
    with pytest.raises(PivObjectError):
        algorithm_for(ec.generate_private_key(ec.SECP521R1()).public_key())


async def test_wrong_algorithm_for_the_key_is_refused(card: PivCard) -> None:
    with pytest.raises(CardError) as caught:
        await card.authenticate("9e", Algorithm.P384, bytes(48))
    assert caught.value.sw == 0x6A86


async def test_ecdsa_input_longer_than_any_digest_is_wrong_data(card: PivCard) -> None:
    with pytest.raises(WrongData):
        await card.authenticate("9e", Algorithm.P256, bytes(65))


async def test_short_ecdsa_digest_signs_as_ecdsa_over_that_digest(card: PivCard) -> None:
    # P-384 key, SHA-256 digest: what yubico-piv-tool sends; must verify as ECDSA-SHA256.
    cert = await card.read_certificate("9c")
    await card.verify_pin(PIN)
    digest = hashlib.sha256(NONCE).digest()
    signature = await card.authenticate("9c", Algorithm.P384, digest)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, NONCE, ec.ECDSA(hashes.SHA256()))


async def test_missing_key_is_reference_not_found(pki: TestPki) -> None:
    card = PivCard(LoopbackTransport(VirtualPivCard(pki.issue_card(algorithms={"9a": "p256"}))))
    await card.select()
    with pytest.raises(CardError) as caught:
        await card.authenticate("9e", Algorithm.P256, bytes(32))
    assert caught.value.sw == 0x6A88


async def test_extended_apdus_are_understood(card: PivCard, loop: LoopbackTransport) -> None:
    await card.verify_pin(PIN)
    cert = await card.read_certificate("9a")
    data = objects.tlv.encode(
        0x7C,
        objects.tlv.encode(0x82, b"")
        + objects.tlv.encode(0x81, signature_input(Algorithm.RSA2048, NONCE)),
    )
    command = Command(0x00, 0x87, 0x07, 0x9A, data, le=65536)
    response = await exchange(loop, command, extended=True)
    signature = objects.tlv.find_path(objects.tlv.decode(response.data), 0x7C, 0x82)
    assert signature is not None
    verify_challenge(cert, NONCE, signature.value)


async def test_get_response_without_pending_data_is_refused(virtual: VirtualPivCard) -> None:
    assert virtual.process(bytes.fromhex("00C0000000")) == b"\x69\x85"


class _Replay(CardTransport):
    """Answers every APDU with one fixed response."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    async def transmit(self, apdu: bytes) -> bytes:
        return self.answer

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    "answer",
    [
        b"\x53\x05\x01\x02" + b"\x90\x00",  # length runs past the end
        b"\x54\x00\x90\x00",  # wrong container tag
        b"\x53\x02\x71\x00\x90\x00",  # no certificate element
        b"\x53\x07\x70\x02\x1f\x8b\x71\x01\x01\x90\x00",  # gzip flag on junk
    ],
)
async def test_malformed_card_answers_are_piv_object_errors(answer: bytes) -> None:
    with pytest.raises(PivObjectError):
        await PivCard(_Replay(answer)).read_certificate("9a")


async def test_malformed_authenticate_answer_is_a_piv_object_error() -> None:
    with pytest.raises(PivObjectError):
        await PivCard(_Replay(b"\x7c\x02\x81\x00\x90\x00")).authenticate(
            "9e", Algorithm.P256, bytes(32)
        )
