"""Signed biometric records: the facial image (5FC108) and fingerprints (5FC103) objects.

Each container holds `BC L { CBEFF header | BDB | SB }` then `FE 00`. The CBEFF record is
SP 800-76-2's patron format PIV: an 88-byte header, the biometric data block (BDB: an
INCITS 378 minutiae or 385 face record, not decoded here) and the signature block (SB: a
CMS SignedData, detached, over header and BDB together). The header, field by field::

     0  1  patron header version (03)
     1  1  SBH security options (0D: signed, not encrypted)
     2  4  BDB length             6  2  SB length
     8  2  BDB format owner       10  2  BDB format type (0201 minutiae, 0501 face)
    12  8  biometric creation date
    20 16  validity period: not before, not after
    36  3  biometric type (000002 face, 000008 finger)
    39  1  biometric data type    40  1  biometric data quality (signed)
    41 18  creator (ASCII, NUL padded)
    59 25  FASC-N                 84  4  reserved

Dates are 8 bytes, `YYYYMMDDhhmmssZ` two digits a byte as unsigned integers (2018 is
14 12) and the letter Z. Checked against GSA's ICAM test cards and NIST's biomdi `piv.h`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from drivers.errors import MalformedData, PivObjectError
from drivers.piv import objects, tlv

RECORD, EDC = 0xBC, 0xFE
HEADER_LENGTH = 88
_DATE = slice(12, 20)
_NOT_BEFORE, _NOT_AFTER = slice(20, 28), slice(28, 36)
_FASCN = slice(59, 84)
TYPE_FACE, TYPE_FINGER = 0x000002, 0x000008


@dataclass(frozen=True, slots=True)
class CbeffHeader:
    """The 88-byte patron-format PIV header; `raw` keeps it as read (the signature covers it)."""

    version: int
    security_options: int
    bdb_length: int
    sb_length: int
    format_owner: int
    format_type: int
    created: datetime
    not_before: datetime
    not_after: datetime
    biometric_type: int
    data_type: int
    quality: int
    creator: str
    fascn: bytes  # 25 bytes as stored; not decoded, so a bad one is a mismatch, not a crash
    reserved: bytes
    raw: bytes

    @classmethod
    def decode(cls, raw: bytes) -> CbeffHeader:
        """Parse the header; raises `PivObjectError` when it is short or a date is invalid."""
        if len(raw) != HEADER_LENGTH:
            raise PivObjectError(f"CBEFF header is {len(raw)} bytes, not {HEADER_LENGTH}")
        return cls(
            version=raw[0],
            security_options=raw[1],
            bdb_length=int.from_bytes(raw[2:6], "big"),
            sb_length=int.from_bytes(raw[6:8], "big"),
            format_owner=int.from_bytes(raw[8:10], "big"),
            format_type=int.from_bytes(raw[10:12], "big"),
            created=decode_date(raw[_DATE], "creation date"),
            not_before=decode_date(raw[_NOT_BEFORE], "validity not-before"),
            not_after=decode_date(raw[_NOT_AFTER], "validity not-after"),
            biometric_type=int.from_bytes(raw[36:39], "big"),
            data_type=raw[39],
            quality=int.from_bytes(raw[40:41], "big", signed=True),
            creator=raw[41:59].rstrip(b"\x00").decode("ascii", "replace"),
            fascn=raw[_FASCN],
            reserved=raw[84:88],
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class CbeffRecord:
    """A signed biometric record: header, BDB and the signature block (CMS, unverified)."""

    header: CbeffHeader
    bdb: bytes
    signature: bytes

    @property
    def signed_content(self) -> bytes:
        """What the signature block signs: the header and the BDB, as read."""
        return self.header.raw + self.bdb

    def encode(self) -> bytes:
        """The 53-wrapped container as GET DATA returns it."""
        record = self.header.raw + self.bdb + self.signature
        content = tlv.encode(RECORD, record) + tlv.encode(EDC, b"")
        return tlv.encode(objects.CONTAINER, content)

    @classmethod
    def decode_content(cls, content: bytes) -> CbeffRecord:
        """Parse the elements inside 53; raises `PivObjectError` when malformed."""
        try:
            items = tlv.decode(content)
        except MalformedData as exc:
            raise PivObjectError(f"biometric object: {exc}") from exc
        record = tlv.find(items, RECORD)
        if record is None:
            raise PivObjectError("biometric object lacks the CBEFF record BC")
        data = record.value
        header = CbeffHeader.decode(data[:HEADER_LENGTH])
        end = HEADER_LENGTH + header.bdb_length
        if end + header.sb_length != len(data):
            raise PivObjectError(
                f"CBEFF lengths (header 88, BDB {header.bdb_length}, SB {header.sb_length}) "
                f"do not add up to the record's {len(data)} bytes"
            )
        return cls(header, data[HEADER_LENGTH:end], data[end:])


def decode_date(raw: bytes, name: str) -> datetime:
    """A CBEFF date: eight bytes YY YY MM DD hh mm ss 'Z', each pair of digits a byte."""
    if len(raw) != 8 or raw[7] != ord("Z") or any(b > 99 for b in raw[:7]):
        raise PivObjectError(f"CBEFF {name} is not YYYYMMDDhhmmssZ")
    try:
        return datetime(raw[0] * 100 + raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], tzinfo=UTC)
    except ValueError as exc:
        raise PivObjectError(f"CBEFF {name} is not a date: {exc}") from exc


def encode_date(when: datetime) -> bytes:
    """The 8-byte CBEFF encoding of ``when`` (UTC)."""
    t = when.astimezone(UTC)
    return bytes((t.year // 100, t.year % 100, t.month, t.day, t.hour, t.minute, t.second)) + b"Z"
