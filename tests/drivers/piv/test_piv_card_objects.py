"""The codecs of the signed card objects (security object, CBEFF biometric records) and the
discovery object, proven on GSA's ICAM test cards: every object of every card folder
parses, re-encodes to the same bytes, and carries the values SP 800-73-4 and SP 800-76-2
prescribe; malformed ones raise `PivObjectError` only."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import ChuidError, PivObjectError
from drivers.piv import objects, tlv
from drivers.piv.cbeff import (
    HEADER_LENGTH,
    TYPE_FACE,
    TYPE_FINGER,
    CbeffRecord,
    decode_date,
    encode_date,
)
from drivers.piv.chuid import Chuid, split_signed
from drivers.piv.security_object import CONTAINERS, LdsHashes, SecurityObject
from tests.paths import ICAM_CARDS, ICAM_MISSING

pytestmark = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")

FOLDERS = (
    sorted(p for p in (ICAM_CARDS / "cards").iterdir() if p.name[:2].isdigit())
    if ICAM_MISSING is None
    else []
)


def _file(card: Path, name: str) -> bytes:
    path = card / name
    return path.read_bytes() if path.is_file() else b""


def _card(name: str) -> Path:
    return ICAM_CARDS / "cards" / name


@pytest.mark.parametrize("card", FOLDERS, ids=lambda p: p.name)
def test_every_chuid_splits_into_signed_bytes_and_signature(card: Path) -> None:
    content = _file(card, "8 - CHUID Object")
    signed = split_signed(content)
    assert signed.tbs.endswith(b"\xfe\x00") and signed.signature[:1] == b"\x30"
    if card.name.startswith("04_"):
        # The tampered CHUID's FASC-N breaks its own parity: only the signature check,
        # which needs no decoding, can name what is wrong with it.
        with pytest.raises(ChuidError, match="tag 30"):
            Chuid.decode_content(content)
        return
    chuid = Chuid.decode_content(content)
    assert chuid.tbs == signed.tbs
    assert tlv.decode_one(chuid.encode()).value == content


@pytest.mark.parametrize("card", FOLDERS, ids=lambda p: p.name)
def test_every_security_object_parses_and_round_trips(card: Path) -> None:
    content = _file(card, "2 - Security Object")
    if card.name.startswith("55_"):
        assert content == b""  # the card without one
        return
    so = SecurityObject.decode_content(content)
    assert tlv.decode_one(so.encode()).value == content
    lds = LdsHashes.decode(
        bytes(cms.ContentInfo.load(so.signature)["content"]["encap_content_info"]["content"])
    )
    assert lds.algorithm == "sha256"
    assert set(lds.hashes) == set(so.mapping)
    assert LdsHashes.decode(lds.encode()) == lds
    # Every mapped container is one SP 800-73-4 names, but for one golden variant's FFFF.
    unknown = {c for c in so.mapping.values() if c not in CONTAINERS}
    assert unknown == ({0xFFFF} if card.name.endswith("_ICI_8") else set())


def test_golden_piv_security_object_maps_its_four_data_groups() -> None:
    so = SecurityObject.decode_content(_file(_card("01_Golden_PIV"), "2 - Security Object"))
    assert so.mapping == {1: 0x3000, 3: 0x6030, 2: 0x6010, 4: 0x3001}
    assert [so.object_id(g) for g in (1, 2, 3, 4, 5)] == [
        objects.CHUID,
        objects.FINGERPRINTS,
        objects.FACIAL_IMAGE,
        objects.PRINTED_INFO,
        None,
    ]


BIOMETRIC_FILES = [
    ("10 - Face Object", 0x0501, TYPE_FACE),
    ("9 - Fingerprints", 0x0201, TYPE_FINGER),
]


@pytest.mark.parametrize("card", FOLDERS, ids=lambda p: p.name)
def test_every_biometric_record_parses_as_patron_format_piv(card: Path) -> None:
    for filename, format_type, biometric_type in BIOMETRIC_FILES:
        content = _file(card, filename)
        if not content:
            assert card.name.endswith("_ICI_8") and filename == "10 - Face Object"
            continue
        record = CbeffRecord.decode_content(content)
        header = record.header
        assert (header.version, header.security_options, header.format_owner) == (3, 0x0D, 0x1B)
        assert (header.format_type, header.biometric_type) == (format_type, biometric_type)
        assert (header.bdb_length, header.sb_length) == (len(record.bdb), len(record.signature))
        assert len(header.fascn) == 25
        assert record.signed_content == header.raw + record.bdb
        assert len(header.raw) == HEADER_LENGTH
        assert tlv.decode_one(record.encode()).value == content


def test_golden_piv_fingerprint_header_reads_field_by_field() -> None:
    header = CbeffRecord.decode_content(_file(_card("01_Golden_PIV"), "9 - Fingerprints")).header
    assert header.created == datetime(2018, 7, 23, 5, 48, 44, tzinfo=UTC)
    assert header.not_before == header.created
    assert header.not_after == datetime(2032, 12, 2, tzinfo=UTC)
    assert (header.data_type, header.quality, header.creator) == (0x80, -2, "NIST Creator")
    assert header.fascn.hex() == "d13810d828ab6c10c339e5a1685a08c92ade0a6184e739c3e7"
    assert header.reserved == bytes(4)


def test_expired_biometric_records_carry_their_end_in_the_header() -> None:
    face = CbeffRecord.decode_content(
        _file(_card("49_FIPS_201-2_Facial_Image_CBEFF_Expired"), "10 - Face Object")
    )
    fingers = CbeffRecord.decode_content(
        _file(_card("52_FIPS_201-2_Fingerprint_CBEFF_Expires_before_CHUID"), "9 - Fingerprints")
    )
    assert face.header.not_after.date().isoformat() == "2017-07-20"
    assert fingers.header.not_after.date().isoformat() == "2027-07-20"


@given(st.datetimes(datetime(1900, 1, 1), datetime(9999, 12, 31), timezones=st.just(UTC)))
def test_cbeff_dates_round_trip_to_the_second(when: datetime) -> None:
    assert decode_date(encode_date(when), "date") == when.replace(microsecond=0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (bytes.fromhex("1412071705302c"), "not YYYYMMDDhhmmssZ"),
        (bytes.fromhex("1412071705302c41"), "not YYYYMMDDhhmmssZ"),
        (bytes.fromhex("14120d1705302c5a"), "not a date"),
        (bytes.fromhex("1464071705302c5a"), "not YYYYMMDDhhmmssZ"),
    ],
)
def test_bad_cbeff_dates_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(PivObjectError, match=message):
        decode_date(raw, "date")


def _golden_fingerprints() -> CbeffRecord:
    return CbeffRecord.decode_content(_file(_card("01_Golden_PIV"), "9 - Fingerprints"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (tlv.encode(0xFE, b""), "lacks the CBEFF record BC"),
        (tlv.encode(0xBC, bytes(40)), "CBEFF header is 40 bytes"),
        (b"\xbc\x05\x00", "biometric object"),
    ],
)
def test_malformed_biometric_objects_raise_piv_object_error(content: bytes, message: str) -> None:
    with pytest.raises(PivObjectError, match=message):
        CbeffRecord.decode_content(content)


def test_a_record_whose_lengths_do_not_add_up_is_refused() -> None:
    record = _golden_fingerprints()
    truncated = tlv.encode(0xBC, record.signed_content + record.signature[:-1])
    with pytest.raises(PivObjectError, match="do not add up"):
        CbeffRecord.decode_content(truncated)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (tlv.encode(0xBA, b"\x01\x30"), "lacks the mapping BA or the LDS object BB"),
        (tlv.encode(0xBA, b"\x01\x30") + tlv.encode(0xBB, b"x"), "2 bytes, not 3 each"),
        (tlv.encode(0xBA, b"\x01\x30\x00\x01\x30\x01") + tlv.encode(0xBB, b""), "twice"),
        (b"\xba\x09", "security object"),
    ],
)
def test_malformed_security_objects_raise_piv_object_error(content: bytes, message: str) -> None:
    with pytest.raises(PivObjectError, match=message):
        SecurityObject.decode_content(content)


def test_an_lds_object_that_is_not_der_is_refused() -> None:
    with pytest.raises(PivObjectError, match="does not parse"):
        LdsHashes.decode(b"\x30\x03\x02\x01")


# --- discovery object ------------------------------------------------------------------

#: README: 25 has none, 26 the application PIN only, 27 both with the application PIN
#: primary, 28 both with the Global PIN primary.
DISCOVERY_CASES = [
    ("25_Disco_Object_Not_Present", None, objects.PIV_PIN),
    ("26_Disco_Object_Present_App_PIN_Only", (True, False, False), objects.PIV_PIN),
    ("27_Disco_Object_Present_App_PIN_Primary", (True, True, False), objects.PIV_PIN),
    ("28_Disco_Object_Present_Global_PIN_Primary", (True, True, True), objects.GLOBAL_PIN),
]


@pytest.mark.parametrize(("name", "policy", "reference"), DISCOVERY_CASES)
def test_discovery_object_says_which_pin_to_verify(
    name: str, policy: tuple[bool, bool, bool] | None, reference: int
) -> None:
    content = tlv.decode_one(_file(_card(name), "1 - Discovery Object")).value
    discovery = objects.Discovery.decode_content(content) if content else None
    if policy is None:
        assert discovery is None
    else:
        assert discovery is not None and discovery.aid == objects.AID
        assert (
            discovery.pin_satisfies_piv,
            discovery.global_pin_satisfies_piv,
            discovery.global_pin_primary,
        ) == policy
        assert objects.Discovery.decode_content(tlv.decode_one(discovery.encode()).value) == (
            discovery
        )
    assert objects.pin_reference(discovery) == reference


@pytest.mark.parametrize("card", FOLDERS, ids=lambda p: p.name)
def test_every_discovery_object_parses_or_is_absent(card: Path) -> None:
    outer = tlv.decode_one(_file(card, "1 - Discovery Object"))
    assert outer.tag == objects.DISCOVERY_TAG
    if outer.value:
        assert objects.Discovery.decode_content(outer.value).aid == objects.AID


def test_a_global_pin_without_a_primary_byte_of_20_is_not_primary() -> None:
    assert not objects.Discovery(objects.AID, b"\x60\x10").global_pin_primary
    assert not objects.Discovery(objects.AID, b"\x20\x20").global_pin_primary  # app PIN off
    assert objects.Discovery(objects.AID, b"\x60\x20").global_pin_primary


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_piv_object_error(data: bytes) -> None:
    for decode in (SecurityObject.decode_content, CbeffRecord.decode_content, LdsHashes.decode):
        with contextlib.suppress(PivObjectError):
            decode(data)


@given(st.binary(min_size=HEADER_LENGTH, max_size=HEADER_LENGTH + 40))
def test_random_records_behind_a_bc_tag_raise_only_piv_object_error(record: bytes) -> None:
    try:
        decoded = CbeffRecord.decode_content(tlv.encode(0xBC, record))
    except PivObjectError:
        return
    assert decoded.signed_content + decoded.signature == record
