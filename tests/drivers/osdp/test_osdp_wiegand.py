"""drivers.osdp.wiegand: card formats with their parity bits, and PIV identifiers as raw bits."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.osdp import wiegand
from drivers.osdp.codes import Reply
from drivers.osdp.messages import decode_reply
from drivers.osdp.replies import CardFormat, RawCardData
from drivers.osdp.wiegand import CardNumber, WiegandFormat

H10301, H10304 = WiegandFormat.H10301, WiegandFormat.H10304
C1000_35, C1000_48 = WiegandFormat.CORPORATE_1000_35, WiegandFormat.CORPORATE_1000_48

# Published H10301 examples: accessgrid.com "Examples of every access control bit format"
# (facility 42, card 69) and the jessety/wiegand-encoder README (facility 90, card 324).
PUBLISHED_26 = [
    ("10010101000000000010001010", 42, 69),
    ("00101101000000001010001000", 90, 324),
]


# Parity groups written out position by position (1 = first bit sent), as the formats are
# documented, to check the module's own arithmetic for them.
def _positions(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split())


C1000_35_P2_EVEN = _positions("3 4 6 7 9 10 12 13 15 16 18 19 21 22 24 25 27 28 30 31 33 34")
C1000_35_P35_ODD = _positions("2 3 5 6 8 9 11 12 14 15 17 18 20 21 23 24 26 27 29 30 32 33")
C1000_48_P2_EVEN = _positions(
    "4 5 7 8 10 11 13 14 16 17 19 20 22 23 25 26 28 29 31 32 34 35 37 38 40 41 43 44 46 47"
)
C1000_48_P48_ODD = _positions(
    "3 4 6 7 9 10 12 13 15 16 18 19 21 22 24 25 27 28 30 31 33 34 36 37 39 40 42 43 45 46"
)


def _bits(card_format: WiegandFormat, facility: int, number: int) -> str:
    return wiegand.bit_string(*wiegand.encode(card_format, facility, number))


def _ones(bits: str, positions: tuple[int, ...] | range) -> int:
    return sum(bits[p - 1] == "1" for p in positions)


@pytest.mark.parametrize(("bits", "facility", "number"), PUBLISHED_26)
def test_h10301_matches_published_bit_strings(bits: str, facility: int, number: int) -> None:
    assert _bits(H10301, facility, number) == bits
    assert wiegand.decode(*wiegand.from_bit_string(bits)) == CardNumber(H10301, facility, number)


def test_h10301_facility_1_card_1() -> None:
    # P1 even over FC 00000001 and 0000: 1. P26 odd over 000000000001: 0.
    assert _bits(H10301, 1, 1) == "1" + "00000001" + "0000000000000001" + "0"


def test_osdp_raw_packs_bits_most_significant_first_and_pads_the_last_byte() -> None:
    count, data = wiegand.from_bit_string(PUBLISHED_26[0][0])
    assert (count, data) == (26, bytes.fromhex("95002280"))
    raw = RawCardData(0, CardFormat.WIEGAND, count, data)
    assert raw.encode().hex() == "00011a0095002280"


@given(st.integers(0, 0xFFFF), st.integers(0, 0x7FFFF))
def test_h10304_layout_and_parity(facility: int, number: int) -> None:
    bits = _bits(H10304, facility, number)
    assert len(bits) == 37
    assert int(bits[1:17], 2) == facility and int(bits[17:36], 2) == number
    assert _ones(bits, range(1, 20)) % 2 == 0  # P1 and bits 2-19: even
    assert _ones(bits, range(19, 38)) % 2 == 1  # bits 19-36 and P37: odd


@given(st.integers(0, 0xFFF), st.integers(0, 0xFFFFF))
def test_corporate_1000_35_layout_and_parity(company: int, number: int) -> None:
    bits = _bits(C1000_35, company, number)
    assert len(bits) == 35
    assert int(bits[2:14], 2) == company and int(bits[14:34], 2) == number
    assert _ones(bits, (2, *C1000_35_P2_EVEN)) % 2 == 0
    assert _ones(bits, (*C1000_35_P35_ODD, 35)) % 2 == 1
    assert _ones(bits, range(1, 36)) % 2 == 1  # P1 odd over the whole card


@given(st.integers(0, 0x3FFFFF), st.integers(0, 0x7FFFFF))
def test_corporate_1000_48_layout_and_parity(company: int, number: int) -> None:
    bits = _bits(C1000_48, company, number)
    assert len(bits) == 48
    assert int(bits[2:24], 2) == company and int(bits[24:47], 2) == number
    assert _ones(bits, (2, *C1000_48_P2_EVEN)) % 2 == 0
    assert _ones(bits, (*C1000_48_P48_ODD, 48)) % 2 == 1
    assert _ones(bits, range(1, 49)) % 2 == 1


_cards = st.sampled_from(list(WiegandFormat)).flatmap(
    lambda f: st.tuples(
        st.just(f),
        st.integers(0, (1 << f.value.facility[1]) - 1),
        st.integers(0, (1 << f.value.number[1]) - 1),
    )
)


@given(_cards)
def test_every_format_decodes_what_it_encodes(card: tuple[WiegandFormat, int, int]) -> None:
    card_format, facility, number = card
    assert wiegand.decode(*wiegand.encode(card_format, facility, number)) == CardNumber(
        card_format, facility, number
    )


@given(_cards, st.data())
def test_a_single_flipped_bit_fails_the_parity_check(
    card: tuple[WiegandFormat, int, int], data: st.DataObject
) -> None:
    count, packed = wiegand.encode(*card)
    position = data.draw(st.integers(0, count - 1))
    value = wiegand.unpack(count, packed) ^ (1 << position)
    assert wiegand.decode(count, wiegand.pack(value, count)) is None


def test_unknown_bit_counts_are_not_card_numbers() -> None:
    assert wiegand.decode(*wiegand.from_bit_string("1" * 34)) is None
    assert wiegand.decode(0, b"") is None


def test_out_of_range_values_and_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        wiegand.encode(H10301, 256, 1)
    with pytest.raises(ValueError):
        wiegand.encode(H10301, 1, 0x10000)
    with pytest.raises(ValueError):
        wiegand.decode(26, b"\x00\x00\x00")
    with pytest.raises(ValueError):
        wiegand.from_bit_string("0102")
    with pytest.raises(ValueError):
        wiegand.pack(4, 2)


@given(st.text(alphabet="01", max_size=300))
def test_bit_strings_round_trip(text: str) -> None:
    assert wiegand.bit_string(*wiegand.from_bit_string(text)) == text


def test_a_fascn_travels_as_200_raw_bits() -> None:
    fascn = bytes.fromhex("d0439458210c2c19a0846d83685a1082108ce73984108ca3fc")
    raw = wiegand.piv_card_data(fascn, reader=1)
    assert (raw.reader, raw.format, raw.bit_count) == (1, CardFormat.RAW_UNSPECIFIED, 200)
    assert raw.encode()[:4] == bytes((1, 0, 200, 0))
    received = decode_reply(Reply.RAW, raw.encode())
    assert isinstance(received, RawCardData)
    assert wiegand.piv_identifier(received) == fascn


def test_a_card_uuid_travels_as_128_raw_bits() -> None:
    uuid = UUID("3a7c2f00-4e2b-4bde-9c1d-5f0e8d1c2b3a")
    raw = wiegand.piv_card_data(uuid)
    assert raw.bit_count == 128 and raw.data == uuid.bytes
    assert wiegand.piv_identifier(raw) == uuid.bytes


def test_other_card_data_is_no_piv_identifier() -> None:
    count, data = wiegand.encode(H10301, 42, 69)
    assert wiegand.piv_identifier(RawCardData(0, CardFormat.WIEGAND, count, data)) is None
    assert wiegand.piv_identifier(RawCardData(0, CardFormat.RAW_UNSPECIFIED, 64, bytes(8))) is None
    with pytest.raises(ValueError):
        wiegand.piv_card_data(bytes(24))
