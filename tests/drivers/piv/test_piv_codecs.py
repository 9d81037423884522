"""BER-TLV, FASC-N and CHUID codecs of the PIV card edge (drivers/piv)."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ChuidError, DriverError, FascnError, MalformedData, TlvError
from drivers.piv import tlv
from drivers.piv.chuid import Chuid, SignedChuid, split_signed
from drivers.piv.fascn import Fascn

# The FASC-N of the default CHUID that yubico-piv-tool and ykman write
# (9999-9999-999999-0-1-0000000000-3-0000-1), as printed by `yubico-piv-tool -a status`.
YUBICO_FASCN = "d4e739da739ced39ce739d836858210842108421c84210c3eb"
YUBICO_CHUID = bytes.fromhex(
    "533b3019" + YUBICO_FASCN + "34107f0563c809a4cf5e04d618af5d67cbe8350832303330303130313e00fe00"
)
# Hand-built: the example fields usually quoted from TIG SCEPACS, computed bit by bit.
EXAMPLE = Fascn("0032", "0001", "092446", "0", "1", "1112223333", "1", "1223", "2")
EXAMPLE_HEX = "d0439458210c2c19a0846d83685a1082108ce73984108ca3fc"


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


fascns = st.builds(
    Fascn,
    _digits(4),
    _digits(4),
    _digits(6),
    _digits(1),
    _digits(1),
    _digits(10),
    _digits(1),
    _digits(4),
    _digits(1),
)


def _set_char(data: bytes, index: int, raw: int) -> bytes:
    shift = 5 * (39 - index)
    acc = int.from_bytes(data, "big")
    acc = (acc & ~(0x1F << shift)) | (raw << shift)
    return acc.to_bytes(25, "big")


def _get_char(data: bytes, index: int) -> int:
    return (int.from_bytes(data, "big") >> (5 * (39 - index))) & 0x1F


# --- errors -------------------------------------------------------------------------------


def test_codec_errors_share_the_driver_root() -> None:
    for cls in (TlvError, FascnError, ChuidError):
        assert issubclass(cls, MalformedData)
        assert issubclass(cls, DriverError)


# --- BER-TLV ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "value", "encoded"),
    [
        (0x30, b"\x01", "300101"),
        (0x5C, b"\x5f\xc1\x02", "5c035fc102"),
        (0x5FC102, b"", "5fc10200"),
        (0x7F61, b"", "7f6100"),
        (0x53, bytes(0x80), "538180" + "00" * 0x80),
        (0x53, bytes(0x100), "53820100" + "00" * 0x100),
        (0x53, bytes(0x10000), "5383010000" + "00" * 0x10000),
    ],
)
def test_tlv_encodes_tags_and_minimal_lengths(tag: int, value: bytes, encoded: str) -> None:
    assert tlv.encode(tag, value).hex() == encoded
    assert tlv.decode_one(bytes.fromhex(encoded)) == tlv.Tlv(tag, value)


def test_tlv_constructed_and_nested_lookup() -> None:
    data = tlv.constructed(0x7C, [tlv.Tlv(0x82, b""), tlv.Tlv(0x81, b"abc")]).encode()
    assert data.hex() == "7c0782008103616263"
    items = tlv.decode(data)
    assert items[0].constructed
    assert tlv.find_path(items, 0x7C, 0x81) == tlv.Tlv(0x81, b"abc")
    assert tlv.find_path(items, 0x7C, 0x99) is None
    assert tlv.find(items, 0x53) is None
    assert not tlv.Tlv(0x81, b"").constructed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("30", "truncated length at offset 1"),
        ("3005aa", "runs past the end"),
        ("5f", "truncated multi-byte tag at offset 0"),
        ("5fc1", "truncated multi-byte tag at offset 0"),
        ("5fc1c10200", "tag longer than 3 bytes at offset 0"),
        ("30817f" + "00" * 0x7F, "over-long length encoding at offset 1"),
        ("3082007f" + "00" * 0x7F, "over-long length encoding at offset 1"),
        ("3080", "unsupported length form 0x80 at offset 1"),
        ("3082ff", "truncated length at offset 1"),
        ("3084000000010", "unsupported length form"),
    ],
)
def test_tlv_decode_refuses_malformed_input_saying_where(data: str, message: str) -> None:
    raw = bytes.fromhex(data) if len(data) % 2 == 0 else bytes.fromhex(data + "0")
    with pytest.raises(TlvError, match=message):
        tlv.decode(raw)


def test_tlv_decode_tree_checks_constructed_values_but_decode_does_not() -> None:
    # PIV tag 30 (FASC-N) has the constructed bit yet holds raw bytes: flat decode keeps it.
    data = bytes.fromhex("7c03300500")
    assert tlv.decode(data) == [tlv.Tlv(0x7C, bytes.fromhex("300500"))]
    with pytest.raises(TlvError, match="runs past the end"):
        tlv.decode_tree(data)


def test_tlv_decode_one_refuses_trailing_bytes() -> None:
    with pytest.raises(TlvError, match="2 trailing bytes at offset 3"):
        tlv.decode_one(bytes.fromhex("300100ffff"))


def test_tlv_depth_limit() -> None:
    item = tlv.Tlv(0x04, b"x")
    for _ in range(5):
        item = tlv.constructed(0x30, [item])
    data = item.encode()
    assert tlv.decode_tree(data, max_depth=5)
    with pytest.raises(TlvError, match="nesting deeper than 4"):
        tlv.decode_tree(data, max_depth=4)


@pytest.mark.parametrize("tag", [-1, 0x1000000, 0x1F, 0x0102, 0x5F8081, 0x5F81, 0x5F0101])
def test_tlv_encode_refuses_invalid_tags(tag: int) -> None:
    with pytest.raises(TlvError):
        tlv.encode(tag, b"")


def test_tlv_children_ignore_the_constructed_bit() -> None:
    # The CHUID container 53 is primitive by BER rules but nests elements in PIV.
    assert tlv.Tlv(0x53, b"\x81\x00").children() == [tlv.Tlv(0x81, b"")]


_one_byte_tags = st.integers(0, 0xFF).filter(lambda t: t & 0x1F != 0x1F)
_two_byte_tags = st.builds(
    lambda a, b: (a << 8) | b,
    st.integers(0, 7).map(lambda x: (x << 5) | 0x1F),
    st.integers(0, 0x7F),
)
_three_byte_tags = st.builds(
    lambda a, b, c: (a << 16) | (b << 8) | c,
    st.integers(0, 7).map(lambda x: (x << 5) | 0x1F),
    st.integers(0x80, 0xFF),
    st.integers(0, 0x7F),
)
_tags = st.one_of(_one_byte_tags, _two_byte_tags, _three_byte_tags)
_primitive_tags = _tags.filter(lambda t: not tlv.Tlv(t, b"").constructed)
_constructed_tags = _tags.filter(lambda t: tlv.Tlv(t, b"").constructed)

_trees: st.SearchStrategy[tlv.Tlv] = st.recursive(
    st.builds(tlv.Tlv, _primitive_tags, st.binary(max_size=300)),
    lambda children: st.builds(tlv.constructed, _constructed_tags, st.lists(children, max_size=4)),
    max_leaves=12,
)


def _rebuild(item: tlv.Tlv) -> tlv.Tlv:
    if item.constructed:
        return tlv.constructed(item.tag, [_rebuild(c) for c in item.children()])
    return item


@given(st.lists(_trees, max_size=4))
def test_tlv_trees_round_trip(items: list[tlv.Tlv]) -> None:
    data = tlv.encode_all(items)
    decoded = tlv.decode_tree(data)
    assert decoded == items
    assert [_rebuild(i) for i in decoded] == items
    assert tlv.encode_all(decoded) == data


@given(st.binary(max_size=64))
def test_tlv_random_bytes_raise_only_malformed_data(data: bytes) -> None:
    try:
        items = tlv.decode_tree(data)
    except MalformedData:
        return
    assert tlv.encode_all(items) == data
    assert tlv.decode(data) == items


# --- FASC-N -------------------------------------------------------------------------------


def test_fascn_yubico_default_golden_vector() -> None:
    fascn = Fascn.from_hex(YUBICO_FASCN)
    assert fascn == Fascn("9999", "9999", "999999", "0", "1", "0000000000", "3", "0000", "1")
    assert fascn.hex() == YUBICO_FASCN


def test_fascn_hand_built_vector() -> None:
    assert EXAMPLE.hex() == EXAMPLE_HEX
    assert len(EXAMPLE.encode()) == 25
    assert Fascn.from_hex(EXAMPLE_HEX) == EXAMPLE
    # First characters by hand: SS 11010, '0' 00001, '0' 00001, '3' 11001 → d0 43 9…
    assert EXAMPLE_HEX.startswith("d0439")


def test_fascn_redacted_and_repr_hide_the_number() -> None:
    text = EXAMPLE.redacted()
    assert text == "0032-0001-**2446"
    assert "1112223333" not in repr(EXAMPLE)
    assert EXAMPLE.hex() not in repr(EXAMPLE)


@given(fascns)
def test_fascn_round_trips(fascn: Fascn) -> None:
    assert Fascn.decode(fascn.encode()) == fascn
    assert Fascn.from_hex(fascn.hex()) == fascn
    assert fascn.hex() == fascn.hex().lower() and len(fascn.hex()) == 50


@given(fascns, st.integers(0, 39), st.integers(0, 4))
def test_fascn_single_bit_flip_is_a_parity_error_at_that_character(
    fascn: Fascn, index: int, bit: int
) -> None:
    data = fascn.encode()
    corrupted = _set_char(data, index, _get_char(data, index) ^ (1 << bit))
    with pytest.raises(FascnError, match=f"parity error in character {index}$"):
        Fascn.decode(corrupted)


@given(fascns, st.integers(0, 38))
def test_fascn_double_bit_change_is_caught_by_the_lrc(fascn: Fascn, index: int) -> None:
    # Flipping one data bit and the parity bit keeps the parity right; only the LRC sees it.
    data = fascn.encode()
    corrupted = _set_char(data, index, _get_char(data, index) ^ 0b10001)
    with pytest.raises(FascnError, match="LRC mismatch in character 39"):
        Fascn.decode(corrupted)


def _with_lrc(data: bytes) -> bytes:
    """Re-encode char 39 so the LRC matches whatever the other characters say."""
    lrc = 0
    for index in range(39):
        raw = _get_char(data, index)
        lrc ^= int(f"{raw >> 1:04b}"[::-1], 2)
    parity = 0 if bin(lrc).count("1") % 2 else 1
    return _set_char(data, 39, (int(f"{lrc:04b}"[::-1], 2) << 1) | parity)


def _char_for(value: int) -> int:
    parity = 0 if bin(value).count("1") % 2 else 1
    return (int(f"{value:04b}"[::-1], 2) << 1) | parity


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, 0x1, "character 0: expected start sentinel"),
        (5, 0x0, "character 5: expected field separator"),
        (21, 0x3, "character 21: expected field separator"),
        (38, 0xD, "character 38: expected end sentinel"),
        (1, 0xA, "character 1: A is not a digit in agency_code"),
        (37, 0xD, "character 37: D is not a digit in association_category"),
    ],
)
def test_fascn_structure_errors_name_the_character(index: int, value: int, message: str) -> None:
    corrupted = _with_lrc(_set_char(EXAMPLE.encode(), index, _char_for(value)))
    with pytest.raises(FascnError, match=message):
        Fascn.decode(corrupted)


@pytest.mark.parametrize("size", [0, 24, 26])
def test_fascn_wrong_length(size: int) -> None:
    with pytest.raises(FascnError, match="25 bytes"):
        Fascn.decode(bytes(size))


def test_fascn_bad_hex_and_bad_fields() -> None:
    with pytest.raises(FascnError):
        Fascn.from_hex("zz")
    with pytest.raises(FascnError, match="agency_code"):
        Fascn("003", "0001", "092446", "0", "1", "1112223333", "1", "1223", "2")
    with pytest.raises(FascnError, match="person_identifier"):
        Fascn("0032", "0001", "092446", "0", "1", "11122233٣3", "1", "1223", "2")


@given(st.binary(min_size=25, max_size=25))
def test_fascn_random_bytes_raise_only_fascn_error(data: bytes) -> None:
    try:
        fascn = Fascn.decode(data)
    except FascnError:
        return
    assert fascn.encode() == data


@given(st.lists(st.integers(0, 15), min_size=40, max_size=40))
def test_fascn_random_well_parity_characters_raise_only_fascn_error(values: list[int]) -> None:
    # Right parity everywhere, so decoding reaches the LRC, separator and digit checks.
    acc = 0
    for value in values:
        acc = (acc << 5) | _char_for(value)
    data = _with_lrc(acc.to_bytes(25, "big"))
    try:
        fascn = Fascn.decode(data)
    except FascnError:
        return
    assert fascn.encode() == data


@given(st.text(max_size=60))
def test_fascn_random_hex_text_raises_only_fascn_error(text: str) -> None:
    with contextlib.suppress(FascnError):
        Fascn.from_hex(text)


# --- CHUID --------------------------------------------------------------------------------

CARD_UUID = "7f0563c8-09a4-cf5e-04d6-18af5d67cbe8"


def test_chuid_yubico_golden_vector() -> None:
    chuid = Chuid.decode(YUBICO_CHUID)
    assert chuid.fascn == Fascn.from_hex(YUBICO_FASCN)
    assert chuid.card_uuid == CARD_UUID
    assert chuid.expires == date(2030, 1, 1)
    assert chuid.signature == b""
    assert chuid.cardholder_uuid is None
    # Signed: everything but the (empty) signature 3E 00, the error detection code FE 00 kept.
    assert chuid.tbs == YUBICO_CHUID[2:-4] + b"\xfe\x00"
    assert chuid.encode() == YUBICO_CHUID


def _sample(**overrides: object) -> Chuid:
    values: dict[str, object] = {
        "fascn": EXAMPLE,
        "card_uuid": CARD_UUID,
        "expires": date(2031, 12, 31),
        "signature": bytes(range(256)) * 3,
        "cardholder_uuid": "00112233-4455-6677-8899-aabbccddeeff",
        "org_identifier": b"1223",
        "duns": b"123456789",
    }
    values.update(overrides)
    return Chuid(**values)  # type: ignore[arg-type]


def test_chuid_round_trip_with_every_element_and_long_lengths() -> None:
    chuid = _sample()
    data = chuid.encode()
    assert data[:2] == b"\x53\x82"
    decoded = Chuid.decode(data)
    assert decoded == chuid
    assert decoded.tbs == chuid.signed_content()
    assert decoded.tbs.endswith(b"\xfe\x00")


def test_chuid_tbs_leaves_out_the_buffer_length_and_the_signature_only() -> None:
    chuid = _sample(signature=b"sig")
    buffer_length = tlv.encode(0xEE, b"\x01\x00")
    content = buffer_length + tlv.decode_one(chuid.encode()).value
    decoded = Chuid.decode(tlv.encode(0x53, content))
    assert decoded.tbs == chuid.signed_content()
    assert split_signed(content) == SignedChuid(chuid.signed_content(), b"sig")
    assert decoded.signature == b"sig"
    assert decoded == chuid


@pytest.mark.parametrize(
    "overrides",
    [
        {"card_uuid": "7F0563C8-09A4-CF5E-04D6-18AF5D67CBE8"},
        {"card_uuid": "7f0563c809a4cf5e04d618af5d67cbe8"},
        {"card_uuid": "not a uuid"},
        {"cardholder_uuid": ""},
    ],
)
def test_chuid_refuses_non_canonical_uuids(overrides: dict[str, str]) -> None:
    with pytest.raises(ChuidError, match="8-4-4-4-12"):
        _sample(**overrides)


@given(fascns, st.uuids(), st.dates(date(1000, 1, 1), date(9999, 12, 31)), st.binary(max_size=600))
def test_chuid_round_trips(fascn: Fascn, card: object, expires: date, signature: bytes) -> None:
    chuid = _sample(fascn=fascn, card_uuid=str(card), expires=expires, signature=signature)
    assert Chuid.decode(chuid.encode()) == chuid


def _content(*items: tuple[int, bytes]) -> bytes:
    return tlv.encode(0x53, b"".join(tlv.encode(t, v) for t, v in items))


_F = (0x30, bytes.fromhex(YUBICO_FASCN))
_G = (0x34, bytes(16))
_E = (0x35, b"20300101")
_S = (0x3E, b"")
_D = (0xFE, b"")


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (tlv.encode(0x54, b""), ChuidError, "expected container tag 53"),
        (_content(_G, _E, _S, _D), ChuidError, "missing tag 30"),
        (_content(_F, _E, _S, _D), ChuidError, "missing tag 34"),
        (_content(_F, _G, _S, _D), ChuidError, "missing tag 35"),
        (_content(_F, _G, _E, _D), ChuidError, "missing tag 3E"),
        (_content(_F, _G, _E, _S), ChuidError, "missing tag FE"),
        (_content(_F, _G, _E, _S, (0xFE, b"\x00")), ChuidError, "FE must be empty"),
        (_content(_F, _G, _G, _E, _S, _D), ChuidError, "tag 34 repeated"),
        (_content(_G, _F, _E, _S, _D), ChuidError, "tag 30 out of order"),
        (_content(_F, (0x99, b""), _G, _E, _S, _D), ChuidError, "unexpected tag 99"),
        (_content((0x30, bytes(25)), _G, _E, _S, _D), ChuidError, "tag 30: parity error"),
        (_content((0x30, bytes(24)), _G, _E, _S, _D), ChuidError, "tag 30: FASC-N must be"),
        (_content(_F, (0x34, bytes(15)), _E, _S, _D), ChuidError, "tag 34: UUID must be 16"),
        (_content(_F, _G, (0x35, b"2030011"), _S, _D), ChuidError, "tag 35: expiry"),
        (_content(_F, _G, (0x35, b"2030-1-1"), _S, _D), ChuidError, "tag 35: expiry"),
        (_content(_F, _G, (0x35, b"20301301"), _S, _D), ChuidError, "20301301 is not a date"),
        (_content(_F, _G, _E, (0x36, b"x"), _S, _D), ChuidError, "tag 36: UUID"),
        (YUBICO_CHUID[:-1], TlvError, "runs past the end"),
        (YUBICO_CHUID + b"\x00", TlvError, "trailing bytes"),
    ],
)
def test_chuid_malformed(data: bytes, error: type[MalformedData], message: str) -> None:
    with pytest.raises(error, match=message):
        Chuid.decode(data)


@given(st.binary(max_size=200))
def test_chuid_random_bytes_raise_only_malformed_data(data: bytes) -> None:
    try:
        chuid = Chuid.decode(data)
    except MalformedData:
        return
    assert Chuid.decode(chuid.encode()) == chuid


@given(st.binary(max_size=120))
def test_chuid_random_content_raises_only_malformed_data(content: bytes) -> None:
    try:
        chuid = Chuid.decode(tlv.encode(0x53, content))
    except MalformedData:
        return
    assert Chuid.decode(chuid.encode()) == chuid
