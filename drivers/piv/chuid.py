"""The Card Holder Unique Identifier data object (SP 800-73-4 Part 1, Appendix A).

The GET DATA response is `53 L { EE? 30 32? 33? 34 35 36? 3E FE }`. The issuer signature
(tag 3E, CMS SignedData) is kept as bytes and not verified here. `tbs` holds what the
signature covers, as SP 800-73-4 and GSA's ICAM test cards sign it: the encodings, byte
for byte as read from the card, of every element except the deprecated buffer length (EE)
and the signature (3E) itself, with the error detection code (FE 00) included. The
digests of the ICAM cards' CHUIDs match exactly that, and not the same bytes without FE.
`encode` never writes EE; `split_signed` gives the signed bytes and the signature without
decoding the fields, so a signature can be checked before a tampered field is parsed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from drivers.errors import ChuidError, MalformedData
from drivers.piv import tlv
from drivers.piv.fascn import Fascn

CONTAINER = 0x53
BUFFER_LENGTH, FASCN, ORG_ID, DUNS, GUID, EXPIRY = 0xEE, 0x30, 0x32, 0x33, 0x34, 0x35
CARDHOLDER_UUID, SIGNATURE, EDC = 0x36, 0x3E, 0xFE
_ORDER = (BUFFER_LENGTH, FASCN, ORG_ID, DUNS, GUID, EXPIRY, CARDHOLDER_UUID, SIGNATURE, EDC)
_UNSIGNED = (BUFFER_LENGTH, SIGNATURE)


@dataclass(frozen=True, slots=True)
class Chuid:
    """A parsed CHUID; `tbs` is the signed content (see the module docstring)."""

    fascn: Fascn
    card_uuid: str
    expires: date
    signature: bytes
    cardholder_uuid: str | None = None
    org_identifier: bytes | None = None
    duns: bytes | None = None
    tbs: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        for name in ("card_uuid", "cardholder_uuid"):
            value = getattr(self, name)
            if value is not None and not _is_canonical_uuid(value):
                raise ChuidError(f"{name} must be a lowercase 8-4-4-4-12 UUID")

    @classmethod
    def decode(cls, data: bytes) -> Chuid:
        """Parse the 53-wrapped CHUID; raises `ChuidError` (or `TlvError`) when malformed."""
        outer = tlv.decode_one(data)
        if outer.tag != CONTAINER:
            raise ChuidError(f"expected container tag 53, got {outer.tag:X}")
        return cls.decode_content(outer.value)

    @classmethod
    def decode_content(cls, content: bytes) -> Chuid:
        """Parse the elements inside the 53 container."""
        items = tlv.decode(content)
        seen: dict[int, bytes] = {}
        last = -1
        tbs = b""
        for item in items:
            if item.tag not in _ORDER:
                raise ChuidError(f"unexpected tag {item.tag:X}")
            if item.tag in seen:
                raise ChuidError(f"tag {item.tag:X} repeated")
            rank = _ORDER.index(item.tag)
            if rank < last:
                raise ChuidError(f"tag {item.tag:X} out of order")
            last = rank
            seen[item.tag] = item.value
            if item.tag not in _UNSIGNED:
                tbs += item.encode()
        for required in (FASCN, GUID, EXPIRY, SIGNATURE, EDC):
            if required not in seen:
                raise ChuidError(f"missing tag {required:X}")
        if seen[EDC]:
            raise ChuidError("error detection code FE must be empty")
        try:
            fascn = Fascn.decode(seen[FASCN])
        except MalformedData as exc:
            raise ChuidError(f"tag 30: {exc}") from exc
        cardholder = seen.get(CARDHOLDER_UUID)
        return cls(
            fascn=fascn,
            card_uuid=_uuid(seen[GUID], "34"),
            expires=_expiry(seen[EXPIRY]),
            signature=seen[SIGNATURE],
            cardholder_uuid=None if cardholder is None else _uuid(cardholder, "36"),
            org_identifier=seen.get(ORG_ID),
            duns=seen.get(DUNS),
            tbs=tbs,
        )

    def _fields_before_signature(self) -> bytes:
        items = [tlv.Tlv(FASCN, self.fascn.encode())]
        if self.org_identifier is not None:
            items.append(tlv.Tlv(ORG_ID, self.org_identifier))
        if self.duns is not None:
            items.append(tlv.Tlv(DUNS, self.duns))
        items.append(tlv.Tlv(GUID, uuid.UUID(self.card_uuid).bytes))
        items.append(tlv.Tlv(EXPIRY, self.expires.strftime("%Y%m%d").encode("ascii")))
        if self.cardholder_uuid is not None:
            items.append(tlv.Tlv(CARDHOLDER_UUID, uuid.UUID(self.cardholder_uuid).bytes))
        return tlv.encode_all(items)

    def signed_content(self) -> bytes:
        """The bytes the issuer signs, built from this object's fields: every element but
        the signature, the empty error detection code last."""
        return self._fields_before_signature() + tlv.encode(EDC, b"")

    def encode(self) -> bytes:
        """The full 53-wrapped CHUID as GET DATA returns it."""
        content = (
            self._fields_before_signature()
            + tlv.encode(SIGNATURE, self.signature)
            + tlv.encode(EDC, b"")
        )
        return tlv.encode(CONTAINER, content)


@dataclass(frozen=True, slots=True)
class SignedChuid:
    """The CHUID's signed bytes and its issuer signature, fields not decoded."""

    tbs: bytes
    signature: bytes


def split_signed(content: bytes) -> SignedChuid:
    """The signed bytes and the 3E signature of a CHUID's content (inside 53).

    Only the TLV structure is decoded, so a CHUID whose FASC-N was altered still yields
    the bytes its signature must cover. Raises `ChuidError` (or `TlvError`) when the
    structure itself is broken or the signature is missing.
    """
    items = tlv.decode(content)
    signature = tlv.find(items, SIGNATURE)
    if signature is None:
        raise ChuidError(f"missing tag {SIGNATURE:X}")
    tbs = b"".join(item.encode() for item in items if item.tag not in _UNSIGNED)
    return SignedChuid(tbs, signature.value)


def _is_canonical_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _uuid(raw: bytes, tag: str) -> str:
    if len(raw) != 16:
        raise ChuidError(f"tag {tag}: UUID must be 16 bytes, got {len(raw)}")
    return str(uuid.UUID(bytes=raw))


def _expiry(raw: bytes) -> date:
    if len(raw) != 8 or not all(0x30 <= b <= 0x39 for b in raw):
        raise ChuidError("tag 35: expiry must be 8 ASCII digits YYYYMMDD")
    text = raw.decode("ascii")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise ChuidError(f"tag 35: {text} is not a date") from exc
