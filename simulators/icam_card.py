"""GSA's ICAM test cards as virtual PIV cards: one card folder served as a real card would.

A folder of the ICAM card set (``cards/NN_Name/``) holds each data object as it is written
to a card (containers without their 53 tag), the certificates of 9A, 9C, 9D and 9E as PEM
with their private keys in PKCS#12 files (empty password), and PIN 123456. `load_icam_card`
turns it into the `CardContents` a `VirtualPivCard` serves, so accessd reads these cards
with the same APDUs, PIN handling and signatures as any other card.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from drivers.errors import MalformedData
from drivers.piv import objects, tlv
from simulators.piv_card import CardContents, PrivateKey, VirtualPivCard

PIN = "123456"
#: The card set gives no PUK; the builder's tools use this one.
PUK = "12345678"

#: The data object files of a card folder and the object each one is.
OBJECT_FILES: dict[str, bytes] = {
    "1 - Discovery Object": objects.DISCOVERY,
    "2 - Security Object": objects.SECURITY_OBJECT,
    "7 - CCC": objects.CCC,
    "8 - CHUID Object": objects.CHUID,
    "9 - Fingerprints": objects.FINGERPRINTS,
    "10 - Face Object": objects.FACIAL_IMAGE,
    "11 - Printed Information": objects.PRINTED_INFO,
}
#: The certificate (and key) files of a card folder by key slot; other ``3 - …`` files in
#: a folder are the builder's copies under the card's own name.
CERTIFICATE_FILES: dict[str, str] = {
    "9a": "3 - ICAM_PIV_Auth_SP_800-73-4",
    "9c": "4 - ICAM_PIV_Dig_Sig_SP_800-73-4",
    "9d": "5 - ICAM_PIV_Key_Mgmt_SP_800-73-4",
    "9e": "6 - ICAM_PIV_Card_Auth_SP_800-73-4",
}
_GLOBAL_PIN_PRESENT = 0x20  # discovery PIN usage policy, first byte: global PIN satisfies PIV


class IcamCardError(ValueError):
    """A card folder that is not an ICAM card as the card set lays it out."""


def load_certificate(path: Path) -> x509.Certificate:
    """A certificate file of the card set: PEM (after OpenSSL's bag attributes) or DER."""
    data = path.read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise IcamCardError(f"{path.name}: not a certificate") from exc


def load_key(path: Path) -> PrivateKey:
    """The private key in a PKCS#12 file of the card set (empty password)."""
    try:
        key, _, _ = pkcs12.load_key_and_certificates(path.read_bytes(), b"")
    except ValueError as exc:
        raise IcamCardError(f"{path.name}: not a PKCS#12 file with an empty password") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise IcamCardError(f"{path.name}: holds no RSA or EC private key")
    return key


def _stored(object_id: bytes, content: bytes) -> bytes | None:
    """The object as GET DATA answers it; None when the card does not have it."""
    if object_id == objects.DISCOVERY:
        # The files hold the whole 7E object; "7E 00" is how the set writes an absent one.
        return content if len(content) > 2 else None
    return tlv.encode(objects.CONTAINER, content) if content else None


def _global_pin(discovery: bytes | None) -> str | None:
    if discovery is None:
        return None
    try:
        policy = objects.Discovery.decode_content(tlv.decode_one(discovery).value)
    except MalformedData:
        return None
    present = policy.pin_usage_policy[0] & _GLOBAL_PIN_PRESENT
    return PIN if present else None


def load_icam_card(folder: Path) -> CardContents:
    """The stored objects and keys of one ICAM card folder."""
    stored: dict[bytes, bytes] = {}
    for filename, object_id in OBJECT_FILES.items():
        path = folder / filename
        content = path.read_bytes() if path.is_file() else b""
        untagged = folder / f"{filename} No Tag"
        if object_id == objects.DISCOVERY and untagged.is_file():
            # Card 48: the builder last wrote its discovery object untagged (PIN policy
            # 60 10, as both of its properties files say) and hashed that one into the
            # security object; the tagged file is an older build (40 00). The card holds
            # the newer content in its 7E object.
            content = tlv.encode(objects.DISCOVERY_TAG, untagged.read_bytes())
        value = _stored(object_id, content)
        if value is not None:
            stored[object_id] = value
    if objects.CHUID not in stored:
        raise IcamCardError(f"{folder.name}: no CHUID object")
    keys: dict[str, PrivateKey] = {}
    for slot, stem in CERTIFICATE_FILES.items():
        cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.p12"
        if not cert_path.is_file():
            continue
        der = load_certificate(cert_path).public_bytes(serialization.Encoding.DER)
        stored[objects.slot(slot).object_id] = objects.encode_certificate(der)
        if key_path.is_file():
            # Kept even when it does not match the certificate: some cards are built so.
            keys[slot] = load_key(key_path)
    return CardContents(
        name=folder.name,
        objects=stored,
        keys=keys,
        pin=PIN,
        puk=PUK,
        global_pin=_global_pin(stored.get(objects.DISCOVERY)),
    )


def icam_card(folder: Path) -> VirtualPivCard:
    """A virtual PIV card serving the ICAM card in ``folder``."""
    return VirtualPivCard(load_icam_card(folder), label="ICAM test card")


def card_folders(card_set: Path) -> list[Path]:
    """Every card folder of a card set (``cards/NN_Name``), in the set's order."""
    return sorted(
        (p for p in (card_set / "cards").iterdir() if p.is_dir() and p.name[:2].isdigit()),
        key=lambda p: p.name,
    )
