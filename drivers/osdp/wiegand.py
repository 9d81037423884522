"""Card numbers in Wiegand formats, as osdp_RAW carries them, and PIV identifiers as raw bits.

osdp_RAW sends a bit count, then the bits most significant first, the last byte padded
with zeros (libosdp src/osdp_pd.c: ``(bits + 7) / 8`` bytes). Positions below count from 1
at the first bit sent. Layouts as RfidResearchGroup/proxmark3 client/src/wiegand_formats.c
implements them (Pack_H10301, Pack_H10304, Pack_C1k35s, Pack_C1k48s):

    H10301  26 bits  P1 even over 2-13; facility 2-9 (8); number 10-25 (16); P26 odd over 14-25
    H10304  37 bits  P1 even over 2-19; facility 2-17 (16); number 18-36 (19); P37 odd over 19-36
    C1000   35 bits  company 3-14 (12); number 15-34 (20); P2 even over 3-34 except every
                     third from 5; P35 odd over 2-33 except every third from 4; P1 odd over 2-35
    C1000   48 bits  company 3-24 (22); number 25-47 (23); P2 even over 4-47 except every
                     third from 6; P48 odd over 3-46 except every third from 5; P1 odd over 2-48

A PIV card's FASC-N (200 bits) or card UUID (128 bits) goes as raw card data of format
code 0 ("raw, unspecified") with a bit count of 8 bits a byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from drivers.osdp.replies import CardFormat, RawCardData

FASCN_SIZE = 25
UUID_SIZE = 16


@dataclass(frozen=True, slots=True)
class _Parity:
    position: int
    odd: bool
    over: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Layout:
    bits: int
    facility: tuple[int, int]  # first position, width
    number: tuple[int, int]
    #: In the order to compute them: a parity bit over other parity bits comes last.
    parities: tuple[_Parity, ...]


def _span(first: int, last: int, skip_remainder: int | None = None) -> tuple[int, ...]:
    return tuple(
        p for p in range(first, last + 1) if skip_remainder is None or p % 3 != skip_remainder
    )


class WiegandFormat(Enum):
    """The card formats read here; each has its own bit count, so the count picks one."""

    H10301 = _Layout(
        26, (2, 8), (10, 16), (_Parity(1, False, _span(2, 13)), _Parity(26, True, _span(14, 25)))
    )
    H10304 = _Layout(
        37, (2, 16), (18, 19), (_Parity(1, False, _span(2, 19)), _Parity(37, True, _span(19, 36)))
    )
    CORPORATE_1000_35 = _Layout(
        35,
        (3, 12),
        (15, 20),
        (
            _Parity(2, False, _span(3, 34, skip_remainder=2)),
            _Parity(35, True, _span(2, 33, skip_remainder=1)),
            _Parity(1, True, _span(2, 35)),
        ),
    )
    CORPORATE_1000_48 = _Layout(
        48,
        (3, 22),
        (25, 23),
        (
            _Parity(2, False, _span(4, 47, skip_remainder=0)),
            _Parity(48, True, _span(3, 46, skip_remainder=2)),
            _Parity(1, True, _span(2, 48)),
        ),
    )

    @property
    def bits(self) -> int:
        layout: _Layout = self.value
        return layout.bits


_BY_BITS = {f.bits: f for f in WiegandFormat}


@dataclass(frozen=True, slots=True)
class CardNumber:
    """A card read in a known format: its facility (company, for Corporate 1000) code and
    card number."""

    format: WiegandFormat
    facility: int
    number: int


def pack(value: int, bits: int) -> bytes:
    """``bits`` bits of ``value``, most significant first, zero-padded to whole bytes."""
    if bits < 0 or value < 0 or value >> bits:
        raise ValueError(f"{value} does not fit {bits} bits")
    size = (bits + 7) // 8
    return (value << (size * 8 - bits)).to_bytes(size, "big")


def unpack(bits: int, data: bytes) -> int:
    """The ``bits`` bits at the start of ``data`` as an integer (padding dropped)."""
    if len(data) != (bits + 7) // 8:
        raise ValueError(f"{bits} bits take {(bits + 7) // 8} bytes, not {len(data)}")
    return int.from_bytes(data, "big") >> (len(data) * 8 - bits)


def bit_string(bits: int, data: bytes) -> str:
    """The bits as '0' and '1' characters, in the order sent."""
    return format(unpack(bits, data), f"0{bits}b") if bits else ""


def from_bit_string(text: str) -> tuple[int, bytes]:
    """(bit count, data) for a string of '0' and '1' characters."""
    if text.strip("01"):
        raise ValueError("a bit string holds only '0' and '1'")
    return len(text), pack(int(text, 2) if text else 0, len(text))


def _bit(value: int, bits: int, position: int) -> int:
    return (value >> (bits - position)) & 1


def _field(value: int, bits: int, first: int, width: int) -> int:
    return (value >> (bits - first - width + 1)) & ((1 << width) - 1)


def _parity_bit(value: int, bits: int, parity: _Parity) -> int:
    ones = sum(_bit(value, bits, p) for p in parity.over)
    return (ones + 1) % 2 if parity.odd else ones % 2


def encode(card_format: WiegandFormat, facility: int, number: int) -> tuple[int, bytes]:
    """(bit count, data) for osdp_RAW: the card's bits with their parity bits set."""
    layout: _Layout = card_format.value
    bits = layout.bits
    value = 0
    for (first, width), field_value, name in (
        (layout.facility, facility, "facility code"),
        (layout.number, number, "card number"),
    ):
        if not 0 <= field_value < (1 << width):
            raise ValueError(f"{name} {field_value} does not fit {width} bits")
        value |= field_value << (bits - first - width + 1)
    for parity in layout.parities:
        value |= _parity_bit(value, bits, parity) << (bits - parity.position)
    return bits, pack(value, bits)


def decode(bits: int, data: bytes) -> CardNumber | None:
    """The card number in ``data``, or None when no format here has ``bits`` bits or a
    parity bit is wrong."""
    value = unpack(bits, data)
    card_format = _BY_BITS.get(bits)
    if card_format is None:
        return None
    layout: _Layout = card_format.value
    for parity in layout.parities:
        if _bit(value, bits, parity.position) != _parity_bit(value, bits, parity):
            return None
    return CardNumber(
        card_format, _field(value, bits, *layout.facility), _field(value, bits, *layout.number)
    )


def piv_card_data(identifier: bytes | UUID, reader: int = 0) -> RawCardData:
    """osdp_RAW for a PIV card's FASC-N (25 bytes, e.g. `drivers.piv.fascn.Fascn.encode()`)
    or card UUID (16 bytes, or a `uuid.UUID`), as raw unspecified card data."""
    data = identifier.bytes if isinstance(identifier, UUID) else bytes(identifier)
    if len(data) not in (FASCN_SIZE, UUID_SIZE):
        raise ValueError(f"a FASC-N is {FASCN_SIZE} bytes and a UUID {UUID_SIZE}, not {len(data)}")
    return RawCardData(reader, CardFormat.RAW_UNSPECIFIED, len(data) * 8, data)


def piv_identifier(raw: RawCardData) -> bytes | None:
    """The FASC-N or card UUID bytes ``raw`` carries, or None for other card data."""
    if raw.format != CardFormat.RAW_UNSPECIFIED or raw.bit_count not in (
        FASCN_SIZE * 8,
        UUID_SIZE * 8,
    ):
        return None
    return raw.data
