"""The PIV card-edge client (SP 800-73-4 Part 2) over an async `CardTransport`.

Every command goes through `drivers.apdu.exchange`, so long answers (61xx) and long
commands (chaining) are handled once, there; card status words arrive as typed
`CardError`s. The PIN is held only for the duration of `verify_pin` and is never put in a
message, log line or repr.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.apdu import Command, exchange
from drivers.errors import (
    AuthenticationBlocked,
    FileNotFound,
    MalformedData,
    PivObjectError,
    WrongPin,
)
from drivers.piv import objects, tlv
from drivers.piv.chuid import Chuid
from drivers.piv.objects import Algorithm, ApplicationTemplate, Ccc, Discovery
from drivers.transport import CardTransport

INS_SELECT, INS_GET_DATA, INS_VERIFY, INS_GENERAL_AUTHENTICATE = 0xA4, 0xCB, 0x20, 0x87
INS_CHANGE_REFERENCE, INS_RESET_RETRY = 0x24, 0x2C
PIV_PIN, PIV_PUK = objects.PIV_PIN, 0x81  # the PIV Card Application PIN and PUK
GLOBAL_PIN = objects.GLOBAL_PIN
PIN_LENGTH = 8
MAX_OBJECT = 65536  # larger than any PIV container; bounds a runaway card


@dataclass(frozen=True, slots=True)
class PinStatus:
    """What an empty VERIFY tells: whether the PIN is verified, else the tries left."""

    verified: bool
    tries_left: int | None


def algorithm_for(key: object) -> Algorithm:
    """The GENERAL AUTHENTICATE algorithm for a certificate or public key; PivObjectError else."""
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048:
        return Algorithm.RSA2048
    if isinstance(public, ec.EllipticCurvePublicKey):
        if isinstance(public.curve, ec.SECP256R1):
            return Algorithm.P256
        if isinstance(public.curve, ec.SECP384R1):
            return Algorithm.P384
    raise PivObjectError(f"no PIV algorithm for a {type(public).__name__} key")


def _pad_pin(pin: str) -> bytes:
    # SP 800-73-4 3.5.1: 6 to 8 digits, padded with FF; never echo the value in the message.
    if not 6 <= len(pin) <= PIN_LENGTH or not pin.isascii() or not pin.isdigit():
        raise ValueError("a PIV PIN is 6 to 8 decimal digits")
    return pin.encode("ascii").ljust(PIN_LENGTH, b"\xff")


class PivCard:
    """One PIV card behind a transport; call `select()` first."""

    def __init__(self, transport: CardTransport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"PivCard({type(self.transport).__name__})"

    async def select(self) -> ApplicationTemplate:
        """SELECT the PIV application by its AID; returns the application property template."""
        command = Command(0x00, INS_SELECT, 0x04, 0x00, objects.AID, le=256)
        response = await exchange(self.transport, command)
        return ApplicationTemplate.decode(response.data)

    async def get_data(self, object_id: bytes) -> bytes:
        """GET DATA for one object; returns its container content (53, or 7E for discovery)."""
        command = Command(0x00, INS_GET_DATA, 0x3F, 0xFF, objects.get_data_command(object_id), 256)
        response = await exchange(self.transport, command, max_response=MAX_OBJECT)
        expected = objects.DISCOVERY_TAG if object_id == objects.DISCOVERY else objects.CONTAINER
        try:
            outer = tlv.decode_one(response.data)
        except MalformedData as exc:
            raise PivObjectError(f"object {object_id.hex().upper()}: {exc}") from exc
        if outer.tag != expected:
            raise PivObjectError(
                f"object {object_id.hex().upper()} came in tag {outer.tag:X}, not {expected:X}"
            )
        return outer.value

    async def read_chuid(self) -> Chuid:
        """The CHUID (its signature is not checked here)."""
        return Chuid.decode_content(await self.get_data(objects.CHUID))

    async def read_ccc(self) -> Ccc:
        """The Card Capability Container."""
        return Ccc.decode_content(await self.get_data(objects.CCC))

    async def read_discovery(self) -> Discovery:
        """The discovery object (AID and PIN usage policy)."""
        return Discovery.decode_content(await self.get_data(objects.DISCOVERY))

    async def read_discovery_if_any(self) -> Discovery | None:
        """The discovery object, or None for a card without one (absent, or empty 7E 00)."""
        try:
            content = await self.get_data(objects.DISCOVERY)
        except FileNotFound:
            return None
        return Discovery.decode_content(content) if content else None

    async def read_certificate_der(self, slot: str) -> bytes:
        """The DER certificate in key slot ``slot``, decompressed when the card gzipped it."""
        content = await self.get_data(objects.slot(slot).object_id)
        try:
            return objects.decode_certificate(content)
        except MalformedData as exc:
            raise PivObjectError(f"certificate of slot {slot}: {exc}") from exc

    async def read_certificate(self, slot: str) -> x509.Certificate:
        """The X.509 certificate of key slot ``slot`` ("9a", "9c", "9d", "9e")."""
        der = await self.read_certificate_der(slot)
        try:
            return x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise PivObjectError(f"certificate of slot {slot} is not DER X.509: {exc}") from exc

    async def read_security_object(self) -> bytes:
        """The security object's content (BA mapping, BB CMS), unparsed."""
        return await self.get_data(objects.SECURITY_OBJECT)

    async def pin_status(self, reference: int = PIV_PIN) -> PinStatus:
        """VERIFY without data: verified (9000), tries left (63Cx) or blocked (6983, 0 left).

        ``reference`` is the PIN's key reference: `PIV_PIN`, or `GLOBAL_PIN` on a card
        whose discovery object makes it primary (`objects.pin_reference`).
        """
        command = Command(0x00, INS_VERIFY, 0x00, reference)
        try:
            await exchange(self.transport, command)
        except WrongPin as exc:
            return PinStatus(verified=False, tries_left=exc.tries_left)
        except AuthenticationBlocked:
            return PinStatus(verified=False, tries_left=0)
        return PinStatus(verified=True, tries_left=None)

    async def pin_tries_left(self, reference: int = PIV_PIN) -> int | None:
        """Tries left before the PIN blocks; None when it is already verified (cards say 9000)."""
        return (await self.pin_status(reference)).tries_left

    async def verify_pin(self, pin: str, reference: int = PIV_PIN) -> None:
        """VERIFY the PIN ``reference`` (application PIN unless told); raises `WrongPin`
        (``tries_left``) or `AuthenticationBlocked`."""
        command = Command(0x00, INS_VERIFY, 0x00, reference, _pad_pin(pin))
        await exchange(self.transport, command)

    async def change_pin(self, old: str, new: str) -> None:
        """CHANGE REFERENCE DATA of the PIN; a wrong ``old`` counts down like VERIFY."""
        data = _pad_pin(old) + _pad_pin(new)
        await exchange(self.transport, Command(0x00, INS_CHANGE_REFERENCE, 0x00, PIV_PIN, data))

    async def unblock_pin(self, puk: str, new: str) -> None:
        """RESET RETRY COUNTER: set a new PIN with the PUK; a wrong PUK counts down the PUK."""
        data = _pad_pin(puk) + _pad_pin(new)
        await exchange(self.transport, Command(0x00, INS_RESET_RETRY, 0x00, PIV_PIN, data))

    async def reset_pin_status(self) -> None:
        """VERIFY with P1=FF: the card forgets that the PIN was verified."""
        await exchange(self.transport, Command(0x00, INS_VERIFY, 0xFF, PIV_PIN))

    async def authenticate(self, slot: str, algorithm: Algorithm, challenge: bytes) -> bytes:
        """GENERAL AUTHENTICATE: the card's private-key operation on ``challenge``.

        For RSA the challenge is the whole padded block (the card does raw RSA); for ECDSA
        it is the digest and the answer a DER signature.
        """
        key = objects.slot(slot).key
        template = tlv.encode(0x7C, tlv.encode(0x82, b"") + tlv.encode(0x81, challenge))
        command = Command(0x00, INS_GENERAL_AUTHENTICATE, int(algorithm), key, template, le=256)
        response = await exchange(self.transport, command, max_response=MAX_OBJECT)
        try:
            answer = tlv.find_path(tlv.decode_tree(response.data), 0x7C, 0x82)
        except MalformedData as exc:
            raise PivObjectError(f"GENERAL AUTHENTICATE answer: {exc}") from exc
        if answer is None or not answer.value:
            raise PivObjectError("GENERAL AUTHENTICATE answer lacks 7C/82")
        return answer.value
