"""The integrity checks of a card's signed objects and of the card's agreement with itself,
each proven on GSA's ICAM test cards: the golden cards pass, and each negative card is
refused by its own check for its own reason. The expected outcomes are the card set's
README, written down here, not accessd's answers. Path validation and revocation are
not exercised here (the conformance run does them); these checks need no network."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509

from accessd.validation.biometrics import (
    Kind,
    VerifiedBiometric,
    check_biometric,
    check_biometric_identifiers,
    verify_biometric,
)
from accessd.validation.chuid import verify_signed_chuid, verify_signed_chuid_content
from accessd.validation.consistency import (
    check_identifiers,
    check_signer_covers_chuid,
    check_subject_key_identifier,
    check_within_chuid,
    content_signing_purpose,
)
from accessd.validation.errors import ValidationError
from accessd.validation.purpose import CONTENT_SIGNING, CONTENT_SIGNING_PIV_I
from accessd.validation.security_object import (
    check_data_group_hashes,
    verify_security_object,
)
from drivers.piv import objects, tlv
from drivers.piv.chuid import Chuid, split_signed
from simulators.icam_card import CERTIFICATE_FILES, load_certificate
from tests.icam_expected import GOLDEN, PIV_I
from tests.paths import ICAM_CARDS, ICAM_MISSING

pytestmark = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")

#: A day on which every golden card's objects and certificates are in their validity.
AS_OF = date(2020, 6, 1)


def _folder(name: str) -> Path:
    return ICAM_CARDS / "cards" / name


def _file(name: str, filename: str) -> bytes:
    path = _folder(name) / filename
    return path.read_bytes() if path.is_file() else b""


@cache
def _chuid(name: str) -> Chuid:
    return Chuid.decode_content(_file(name, "8 - CHUID Object"))


@cache
def _signer(name: str) -> x509.Certificate:
    return verify_signed_chuid(split_signed(_file(name, "8 - CHUID Object")))


def _certificate(name: str, slot: str) -> x509.Certificate:
    return load_certificate(_folder(name) / f"{CERTIFICATE_FILES[slot]}.crt")


def _discovery(name: str) -> bytes | None:
    # Card 48's security object hashes the discovery object its builder wrote last, kept
    # in the folder as "No Tag" (its content); the tagged file is an older one.
    untagged = _file(name, "1 - Discovery Object No Tag")
    if untagged:
        return untagged
    return tlv.decode_one(_file(name, "1 - Discovery Object")).value or None


def _objects_read(name: str) -> dict[bytes, bytes]:
    read = {
        objects.CHUID: _file(name, "8 - CHUID Object"),
        objects.CCC: _file(name, "7 - CCC"),
        objects.FACIAL_IMAGE: _file(name, "10 - Face Object"),
        objects.FINGERPRINTS: _file(name, "9 - Fingerprints"),
        objects.PRINTED_INFO: _file(name, "11 - Printed Information"),
        objects.DISCOVERY: _discovery(name) or b"",
    }
    return {k: v for k, v in read.items() if v}


def _refused(check: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(ValidationError) as caught:
        check(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.detail  # every refusal says which object and which check
    return str(caught.value.code)


# --- CHUID --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_cards_chuid_signature_verifies(name: str) -> None:
    signer = _signer(name)
    assert content_signing_purpose(signer) == (
        CONTENT_SIGNING_PIV_I if name in PIV_I else CONTENT_SIGNING
    )
    signed = verify_signed_chuid_content(split_signed(_file(name, "8 - CHUID Object")))
    assert signed.signing_time is not None  # every golden CHUID says when it was signed
    check_signer_covers_chuid(signer, _chuid(name), signed.signing_time)


def test_tampered_chuid_is_refused_for_its_signature() -> None:
    signed = split_signed(_file("04_Tampered_CHUID", "8 - CHUID Object"))
    assert _refused(verify_signed_chuid, signed) == "chuid_signature"


def test_a_content_signer_that_expires_before_the_chuid_is_refused() -> None:
    name = "56_FIPS_201-2_Signer_Expires"
    assert (
        _refused(check_signer_covers_chuid, _signer(name), _chuid(name))
        == "content_signer_expires_before_chuid"
    )


def test_a_chuid_signed_outside_its_signers_validity_is_refused() -> None:
    # Card 09's signer expired in 2014; the CHUID says it was signed in 2018. The validator
    # refuses that signer as expired anyway; this is the CHUID's own claim, checked alone.
    name = "09_Expired_CHUID_Signer"
    signed = verify_signed_chuid_content(split_signed(_file(name, "8 - CHUID Object")))
    assert signed.signing_time is not None and signed.signing_time.year == 2018
    code = _refused(check_signer_covers_chuid, signed.signer, _chuid(name), signed.signing_time)
    assert code == "content_signer_not_valid_at_signing"


# --- certificates against the CHUID ------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_cards_certificates_agree_with_their_chuid(name: str) -> None:
    chuid = _chuid(name)
    for slot in ("9a", "9c", "9d", "9e"):
        cert = _certificate(name, slot)
        check_subject_key_identifier(slot, cert)
        check_within_chuid(slot, cert, chuid)
        if slot in ("9a", "9e"):
            check_identifiers(slot, cert, chuid)


@pytest.mark.parametrize(
    ("name", "slot", "code"),
    [
        ("15_CHUID_FASCN_mismatch", "9a", "fascn_mismatch"),
        ("16_Card_Authentication_FASCN_mismatch", "9e", "fascn_mismatch"),
        ("19_CHUID_UUID_mismatch", "9a", "uuid_mismatch"),
        ("20_Card_Authent_UUID_mismatch", "9e", "uuid_mismatch"),
    ],
)
def test_certificates_naming_another_card_are_refused(name: str, slot: str, code: str) -> None:
    assert _refused(check_identifiers, slot, _certificate(name, slot), _chuid(name)) == code


def test_card_16_9a_still_names_the_chuids_card() -> None:
    # Only the card-authentication certificate was altered on this card.
    name = "16_Card_Authentication_FASCN_mismatch"
    check_identifiers("9a", _certificate(name, "9a"), _chuid(name))


def test_a_substituted_key_pair_is_refused_by_its_subject_key_identifier() -> None:
    cert = _certificate("03_SKID_Mismatch", "9a")
    assert _refused(check_subject_key_identifier, "9a", cert) == "skid_mismatch"
    check_subject_key_identifier("9e", _certificate("03_SKID_Mismatch", "9e"))


def test_a_certificate_outliving_the_chuid_is_refused() -> None:
    name = "11_Certs_Expire_after_CHUID"
    code = _refused(check_within_chuid, "9a", _certificate(name, "9a"), _chuid(name))
    assert code == "certificate_outlives_chuid"


# --- security object -----------------------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_cards_security_object_verifies_and_every_group_read_matches(name: str) -> None:
    verified = verify_security_object(
        _file(name, "2 - Security Object"), required=True, known_signers=[_signer(name)]
    )
    assert verified is not None
    assert content_signing_purpose(verified.signer) == content_signing_purpose(_signer(name))
    result = check_data_group_hashes(verified, _objects_read(name))
    assert result.matched
    # Only one golden variant lists a group it cannot map (container FFFF).
    assert result.unchecked == ((2,) if name.endswith("_ICI_8") else ())


def test_a_tampered_security_object_is_refused_for_its_signature() -> None:
    name = "08_Tampered_Security_Object"
    content = _file(name, "2 - Security Object")
    code = _refused(verify_security_object, content, required=True, known_signers=[_signer(name)])
    assert code == "security_object_signature"


def test_a_bad_hash_in_the_security_object_is_refused() -> None:
    name = "38_Bad_Hash_in_Sec_Object"
    verified = verify_security_object(
        _file(name, "2 - Security Object"), required=True, known_signers=[_signer(name)]
    )
    assert verified is not None
    code = _refused(check_data_group_hashes, verified, _objects_read(name))
    assert code == "security_object_hash"


def test_a_listed_group_the_card_does_not_have_is_refused_one_not_read_is_unchecked() -> None:
    name = "01_Golden_PIV"
    verified = verify_security_object(
        _file(name, "2 - Security Object"), required=True, known_signers=[_signer(name)]
    )
    assert verified is not None
    read = _objects_read(name)
    del read[objects.FACIAL_IMAGE]
    group = next(
        g for g in verified.lds.hashes if verified.mapping.object_id(g) == objects.FACIAL_IMAGE
    )
    # Not read (the PIN was not given): left unchecked, as the station could not know.
    assert group in check_data_group_hashes(verified, read).unchecked
    # Asked for, and the card said "not found": the issuer hashed an object now gone.
    code = _refused(check_data_group_hashes, verified, read, {objects.FACIAL_IMAGE})
    assert code == "security_object_group_missing"


def test_a_missing_security_object_is_refused_where_required_and_skipped_where_not() -> None:
    content = _file("55_FIPS_201-2_Missing_Security_Object", "2 - Security Object")
    assert content == b""
    assert _refused(verify_security_object, content, required=True) == "security_object_missing"
    assert _refused(verify_security_object, None, required=True) == "security_object_missing"
    assert verify_security_object(content, required=False) is None


def test_the_hash_covers_the_content_inside_the_container_tag() -> None:
    name = "01_Golden_PIV"
    verified = verify_security_object(
        _file(name, "2 - Security Object"), required=True, known_signers=[_signer(name)]
    )
    assert verified is not None
    wrapped = {k: tlv.encode(objects.CONTAINER, v) for k, v in _objects_read(name).items()}
    assert _refused(check_data_group_hashes, verified, wrapped) == "security_object_hash"


def test_card_48s_older_discovery_file_is_not_the_one_its_security_object_hashes() -> None:
    name = "48_T=0_with_Non-Zero_PPS_LEN_Value"
    verified = verify_security_object(
        _file(name, "2 - Security Object"), required=True, known_signers=[_signer(name)]
    )
    assert verified is not None
    stale = tlv.decode_one(_file(name, "1 - Discovery Object")).value
    read = {**_objects_read(name), objects.DISCOVERY: stale}
    assert _refused(check_data_group_hashes, verified, read) == "security_object_hash"


# --- biometric records -----------------------------------------------------------------

RECORDS: list[tuple[Kind, str]] = [
    ("facial_image", "10 - Face Object"),
    ("fingerprints", "9 - Fingerprints"),
]


def _record(name: str, kind: Kind) -> VerifiedBiometric:
    filename = dict(RECORDS)[kind]
    return verify_biometric(kind, _file(name, filename), known_signers=[_signer(name)])


@pytest.mark.parametrize("name", [*GOLDEN, "59_Valid_CBEFF_for_Card_51"])
def test_golden_cards_biometric_records_verify_and_name_their_card(name: str) -> None:
    for kind, filename in RECORDS:
        if not _file(name, filename):
            assert name.endswith("_ICI_8")  # "an empty facial image container"
            continue
        record = _record(name, kind)
        check_biometric(record, _chuid(name), today=AS_OF)
        assert content_signing_purpose(record.signer) == content_signing_purpose(_signer(name))


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("06_Tampered_PHOTO", "facial_image", "facial_image_signature"),
        ("07_Tampered_Fingerprints", "fingerprints", "fingerprints_signature"),
    ],
)
def test_tampered_biometric_records_are_refused_for_their_signature(
    name: str, kind: Kind, code: str
) -> None:
    assert _refused(_record, name, kind) == code


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("17_PHOTO_FASCN_mismatch", "facial_image", "facial_image_fascn_mismatch"),
        ("18_Fingerprints_FASCN_mismatch", "fingerprints", "fingerprints_fascn_mismatch"),
        ("21_PHOTO_UUID_mismatch", "facial_image", "facial_image_uuid_mismatch"),
        ("22_Fingerprints_UUID_mismatch", "fingerprints", "fingerprints_uuid_mismatch"),
        ("49_FIPS_201-2_Facial_Image_CBEFF_Expired", "facial_image", "facial_image_expired"),
        (
            "50_FIPS_201-2_Facial_Image_CBEFF_Expires_before_CHUID",
            "facial_image",
            "facial_image_expires_before_chuid",
        ),
        ("51_FIPS_201-2_Fingerprint_CBEFF_Expired", "fingerprints", "fingerprints_expired"),
        (
            "52_FIPS_201-2_Fingerprint_CBEFF_Expires_before_CHUID",
            "fingerprints",
            "fingerprints_expires_before_chuid",
        ),
    ],
)
def test_biometric_records_failing_their_check_are_refused(
    name: str, kind: Kind, code: str
) -> None:
    record = _record(name, kind)
    assert _refused(check_biometric, record, _chuid(name), today=AS_OF) == code
    other: Kind = "fingerprints" if kind == "facial_image" else "facial_image"
    check_biometric(_record(name, other), _chuid(name), today=AS_OF)  # only the one is bad


def test_a_record_not_valid_yet_is_refused() -> None:
    record = _record("01_Golden_PIV", "facial_image")
    code = _refused(check_biometric, record, _chuid("01_Golden_PIV"), today=date(2018, 1, 1))
    assert code == "facial_image_not_yet_valid"


def test_a_replacement_card_keeps_the_biometric_records_of_the_card_it_replaced() -> None:
    # 46 ICI_9 replaces the ICI 8 card: same credential, issue digit 9; its records name the
    # ICI 8 FASC-N and that card's UUID. A golden card, so both kinds are accepted...
    ici_8, ici_9 = "46_Golden_FIPS_201-2_PIV_ICI_8", "46_Golden_FIPS_201-2_PIV_ICI_9"
    for kind in ("facial_image", "fingerprints"):
        check_biometric_identifiers(_record(ici_9, kind), _chuid(ici_9))
    check_biometric_identifiers(_record(ici_9, "fingerprints"), _chuid(ici_8))
    # ...but not against a card of an EARLIER issue (46 is ICI 1): records cannot come from
    # a card issued after the one that carries them.
    code = _refused(
        check_biometric_identifiers,
        _record(ici_9, "fingerprints"),
        _chuid("46_Golden_FIPS_201-2_PIV"),
    )
    assert code == "fingerprints_fascn_mismatch"
    # Another credential altogether (card 01's records on card 46) stays a mismatch.
    code = _refused(
        check_biometric_identifiers, _record("01_Golden_PIV", "fingerprints"), _chuid(ici_9)
    )
    assert code == "fingerprints_fascn_mismatch"
