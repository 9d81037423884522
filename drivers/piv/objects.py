"""PIV data objects and key slots (SP 800-73-4 Part 1): tags, containers and their codecs.

Shared by the card-edge client and the virtual card, so both read and write one format.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from enum import IntEnum

from drivers.errors import MalformedData, PivObjectError
from drivers.piv import tlv

AID = bytes.fromhex("A000000308000010000100")
#: The NIST RID; the APT names it as the tag allocation authority.
NIST_RID = AID[:5]

CONTAINER = 0x53
DISCOVERY_TAG = 0x7E
APT_TAG = 0x61

# GET DATA object identifiers (the value of tag 5C in the command).
DISCOVERY = bytes.fromhex("7E")
CHUID = bytes.fromhex("5FC102")
CCC = bytes.fromhex("5FC107")
SECURITY_OBJECT = bytes.fromhex("5FC106")
PRINTED_INFO = bytes.fromhex("5FC109")
FACIAL_IMAGE = bytes.fromhex("5FC108")
FINGERPRINTS = bytes.fromhex("5FC103")
KEY_HISTORY = bytes.fromhex("5FC10C")

#: VERIFY key references (SP 800-73-4 Part 2, Table 4): the PIV Card Application PIN and
#: the card's Global PIN.
PIV_PIN, GLOBAL_PIN = 0x80, 0x00

CERT, CERT_INFO, MSCUID, EDC = 0x70, 0x71, 0x72, 0xFE
CERT_INFO_GZIP = 0x01  # CertInfo bit 0: the certificate is gzip-compressed
MAX_CERT = 16384  # a decompressed certificate longer than this is refused


class Algorithm(IntEnum):
    """Cryptographic mechanism identifiers of SP 800-78-5 used in GENERAL AUTHENTICATE."""

    RSA2048 = 0x07
    P256 = 0x11
    P384 = 0x14


@dataclass(frozen=True, slots=True)
class Slot:
    """A key reference, its certificate's object id and whether it always needs the PIN."""

    name: str
    key: int
    object_id: bytes
    pin_always: bool = False


SLOTS: dict[str, Slot] = {
    "9a": Slot("9a", 0x9A, bytes.fromhex("5FC105")),
    "9c": Slot("9c", 0x9C, bytes.fromhex("5FC10A"), pin_always=True),
    "9d": Slot("9d", 0x9D, bytes.fromhex("5FC10B")),
    "9e": Slot("9e", 0x9E, bytes.fromhex("5FC101")),
}


def slot(name: str) -> Slot:
    """The slot named ``name`` ("9a", "9c", "9d", "9e"); ValueError for any other."""
    try:
        return SLOTS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown PIV key slot {name!r}; expected one of {sorted(SLOTS)}"
        ) from None


def get_data_command(object_id: bytes) -> bytes:
    """The data field of GET DATA: the tag list 5C naming one object."""
    return tlv.encode(0x5C, object_id)


def encode_certificate(der: bytes, *, compress: bool = False) -> bytes:
    """The 53-wrapped certificate container, gzip-compressed when asked."""
    body = gzip.compress(der, mtime=0) if compress else der
    info = CERT_INFO_GZIP if compress else 0x00
    content = tlv.encode(CERT, body) + tlv.encode(CERT_INFO, bytes((info,))) + tlv.encode(EDC, b"")
    return tlv.encode(CONTAINER, content)


def decode_certificate(content: bytes) -> bytes:
    """The DER certificate from a certificate container's content (inside 53)."""
    items = tlv.decode(content)
    cert = tlv.find(items, CERT)
    if cert is None:
        raise PivObjectError("certificate container has no tag 70")
    info = tlv.find(items, CERT_INFO)
    if info is not None and len(info.value) != 1:
        raise PivObjectError("CertInfo (tag 71) must be one byte")
    if info is None or not info.value[0] & CERT_INFO_GZIP:
        return cert.value
    try:
        # Bounded: a hostile card must not make us inflate gigabytes.
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        der = inflater.decompress(cert.value, MAX_CERT + 1)
    except zlib.error as exc:
        raise PivObjectError(f"compressed certificate does not inflate: {exc}") from exc
    if len(der) > MAX_CERT or inflater.unconsumed_tail:
        raise PivObjectError(f"certificate inflates to more than {MAX_CERT} bytes")
    return der


@dataclass(frozen=True, slots=True)
class Discovery:
    """The discovery object 7E: the PIV AID and the PIN usage policy bytes.

    PIN usage policy (SP 800-73-4 Part 1, 3.3.2): in the first byte, 0x40 says the PIV
    Card Application PIN satisfies the PIV access rules and 0x20 that the Global PIN does;
    the second byte, meaningful only when both do, names the primary one: 0x10 the
    application PIN, 0x20 the Global PIN.
    """

    aid: bytes
    pin_usage_policy: bytes

    @property
    def pin_satisfies_piv(self) -> bool:
        """Whether the PIV application PIN satisfies PIV access rules (bit 7 of byte 1)."""
        return bool(self.pin_usage_policy and self.pin_usage_policy[0] & 0x40)

    @property
    def global_pin_satisfies_piv(self) -> bool:
        """Whether the Global PIN satisfies PIV access rules (bit 6 of byte 1)."""
        return bool(self.pin_usage_policy and self.pin_usage_policy[0] & 0x20)

    @property
    def global_pin_primary(self) -> bool:
        """Whether the card asks for its Global PIN first (both PINs usable, byte 2 is 20)."""
        return (
            self.pin_satisfies_piv
            and self.global_pin_satisfies_piv
            and len(self.pin_usage_policy) == 2
            and self.pin_usage_policy[1] == 0x20
        )

    def encode(self) -> bytes:
        """The 7E-wrapped object as GET DATA returns it."""
        content = tlv.encode(0x4F, self.aid) + tlv.encode(0x5F2F, self.pin_usage_policy)
        return tlv.encode(DISCOVERY_TAG, content)

    @classmethod
    def decode_content(cls, content: bytes) -> Discovery:
        """Parse the elements inside 7E."""
        items = tlv.decode(content)
        aid, policy = tlv.find(items, 0x4F), tlv.find(items, 0x5F2F)
        if aid is None or policy is None:
            raise PivObjectError("discovery object lacks 4F or 5F2F")
        if len(policy.value) != 2:
            raise PivObjectError("PIN usage policy (5F2F) must be two bytes")
        return cls(aid.value, policy.value)


def pin_reference(discovery: Discovery | None) -> int:
    """The key reference a reader should VERIFY: the Global PIN (00) when the card's
    discovery object says it is primary, else the PIV Card Application PIN (80).

    A card without a discovery object, or with an empty one, has the application PIN only.
    """
    if discovery is not None and discovery.global_pin_primary:
        return GLOBAL_PIN
    return PIV_PIN


@dataclass(frozen=True, slots=True)
class Ccc:
    """The Card Capability Container (5FC107): card identifier and version bytes."""

    card_identifier: bytes
    container_version: int = 0x21
    grammar_version: int = 0x21
    data_model: int = 0x10

    def encode(self) -> bytes:
        """The 53-wrapped CCC; optional empty elements are written as SP 800-73-4 lists them."""
        items = [
            tlv.Tlv(0xF0, self.card_identifier),
            tlv.Tlv(0xF1, bytes((self.container_version,))),
            tlv.Tlv(0xF2, bytes((self.grammar_version,))),
            tlv.Tlv(0xF3, b""),
            tlv.Tlv(0xF4, b"\x00"),
            tlv.Tlv(0xF5, bytes((self.data_model,))),
            tlv.Tlv(0xF6, b""),
            tlv.Tlv(0xF7, b""),
            tlv.Tlv(0xFA, b""),
            tlv.Tlv(0xFB, b""),
            tlv.Tlv(0xFC, b""),
            tlv.Tlv(0xFD, b""),
            tlv.Tlv(EDC, b""),
        ]
        return tlv.encode(CONTAINER, tlv.encode_all(items))

    @classmethod
    def decode_content(cls, content: bytes) -> Ccc:
        """Parse the elements inside 53; the card identifier F0 is required."""
        items = tlv.decode(content)
        ident = tlv.find(items, 0xF0)
        if ident is None:
            raise PivObjectError("CCC lacks the card identifier F0")

        def one_byte(tag: int, default: int) -> int:
            item = tlv.find(items, tag)
            if item is None:
                return default
            if len(item.value) != 1:
                raise PivObjectError(f"CCC element {tag:X} must be one byte")
            return item.value[0]

        return cls(ident.value, one_byte(0xF1, 0x21), one_byte(0xF2, 0x21), one_byte(0xF5, 0x10))


@dataclass(frozen=True, slots=True)
class ApplicationTemplate:
    """The application property template SELECT answers (tag 61)."""

    aid_suffix: bytes
    authority: bytes
    label: str
    algorithms: tuple[int, ...]

    def encode(self) -> bytes:
        """The 61-wrapped template."""
        algs = b"".join(tlv.encode(0x80, bytes((a,))) for a in self.algorithms)
        content = (
            tlv.encode(0x4F, self.aid_suffix)
            + tlv.encode(0x79, tlv.encode(0x4F, self.authority))
            + tlv.encode(0x50, self.label.encode("ascii"))
            + tlv.encode(0xAC, algs + tlv.encode(0x06, b""))
        )
        return tlv.encode(APT_TAG, content)

    @classmethod
    def decode(cls, data: bytes) -> ApplicationTemplate:
        """Parse the 61-wrapped template; label and algorithms may be absent."""
        try:
            outer = tlv.decode_one(data)
            if outer.tag != APT_TAG:
                raise PivObjectError(f"SELECT answered tag {outer.tag:X}, not 61")
            items = outer.children()
            suffix = tlv.find(items, 0x4F)
            authority = tlv.find_path(items, 0x79, 0x4F)
            label = tlv.find(items, 0x50)
            algs = tlv.find(items, 0xAC)
            algorithms = tuple(
                item.value[0]
                for item in (algs.children() if algs is not None else [])
                if item.tag == 0x80 and len(item.value) == 1
            )
        except MalformedData as exc:
            raise PivObjectError(f"application property template: {exc}") from exc
        if suffix is None:
            raise PivObjectError("application property template lacks 4F")
        return cls(
            aid_suffix=suffix.value,
            authority=authority.value if authority is not None else b"",
            label=label.value.decode("ascii", "replace") if label is not None else "",
            algorithms=algorithms,
        )
