"""The enrollment station's inspection of ICAM test cards, read over virtual cards with the
PIN: each golden card passes every check of the card's own data, and each negative card
whose defect lies in that data is refused with its own reason code, in the order the
checks run. The table is the card set's README, not accessd's answers.

Certificate paths and revocation are out of scope here (the conformance run serves the
card set's CRLs and OCSP responders): a validator that accepts every certificate stands
in, so the cards whose reason is a path, expiry of a CA or signer, or revocation (09, 10,
12, 13, 24, 42-45, 57, 58) are not in this table.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from accessd.authn.challenges import ChallengeBook
from accessd.authn.proofs import Authenticator
from accessd.enrollment.errors import CardRefused
from accessd.enrollment.inspection import CardIdentity, inspect
from accessd.enrollment.reading import read_card
from accessd.validation.purpose import Purpose
from accessd.validation.result import ValidatedCertificate, piv_identifiers
from drivers.piv import objects, tlv
from simulators.icam_card import PIN, load_icam_card
from simulators.loopback import LoopbackTransport
from simulators.piv_card import VirtualPivCard
from tests.icam_expected import GOLDEN
from tests.paths import ICAM_CARDS, ICAM_MISSING

pytestmark = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")

#: A day on which the golden cards and every object on them are valid, and cards 11 and
#: 56 are not yet expired, so only their own defect applies.
AS_OF = date(2020, 6, 1)


#: README "Refuse, with this reason", for the reasons in the card's own data.
REFUSED = [
    ("03_SKID_Mismatch", "skid_mismatch"),
    ("04_Tampered_CHUID", "chuid_signature"),
    ("06_Tampered_PHOTO", "facial_image_signature"),
    ("07_Tampered_Fingerprints", "fingerprints_signature"),
    ("08_Tampered_Security_Object", "security_object_signature"),
    ("11_Certs_Expire_after_CHUID", "certificate_outlives_chuid"),
    ("14_Expired_CHUID", "expired"),
    ("15_CHUID_FASCN_mismatch", "fascn_mismatch"),
    ("16_Card_Authentication_FASCN_mismatch", "fascn_mismatch"),
    ("17_PHOTO_FASCN_mismatch", "facial_image_fascn_mismatch"),
    ("18_Fingerprints_FASCN_mismatch", "fingerprints_fascn_mismatch"),
    ("19_CHUID_UUID_mismatch", "uuid_mismatch"),
    ("20_Card_Authent_UUID_mismatch", "uuid_mismatch"),
    ("21_PHOTO_UUID_mismatch", "facial_image_uuid_mismatch"),
    ("22_Fingerprints_UUID_mismatch", "fingerprints_uuid_mismatch"),
    ("23_Public_Private_Key_mismatch", "bad_signature"),
    ("38_Bad_Hash_in_Sec_Object", "security_object_hash"),
    ("49_FIPS_201-2_Facial_Image_CBEFF_Expired", "facial_image_expired"),
    ("50_FIPS_201-2_Facial_Image_CBEFF_Expires_before_CHUID", "facial_image_expires_before_chuid"),
    ("51_FIPS_201-2_Fingerprint_CBEFF_Expired", "fingerprints_expired"),
    ("52_FIPS_201-2_Fingerprint_CBEFF_Expires_before_CHUID", "fingerprints_expires_before_chuid"),
    ("55_FIPS_201-2_Missing_Security_Object", "security_object_missing"),
    ("56_FIPS_201-2_Signer_Expires", "content_signer_expires_before_chuid"),
]


class AcceptingValidator:
    """Stands in for path validation: every certificate is taken as valid, and the
    purposes asked for are kept so a test can see which were."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def validate(self, cert_der: bytes, purpose: Purpose) -> ValidatedCertificate:
        cert = x509.load_der_x509_certificate(cert_der)
        self.asked.append((cert.subject.rfc4514_string(), purpose.name))
        fascn, card_uuid = piv_identifiers(cert)
        now = datetime.now(UTC)
        return ValidatedCertificate(
            purpose=purpose.name,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            serial=cert.serial_number,
            not_after=cert.not_valid_after_utc,
            sha256=hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
            fascn=fascn,
            card_uuid=card_uuid,
            public_key=cert.public_key(),
            revocation_source="crl",
            validated_at=now,
            reusable_until=now + timedelta(hours=1),
            certificate=cert,
        )


def _virtual_card(name: str) -> VirtualPivCard:
    folder = ICAM_CARDS / "cards" / name
    contents = load_icam_card(folder)
    untagged = folder / "1 - Discovery Object No Tag"
    if untagged.is_file():
        # Card 48's security object hashes the discovery object its builder wrote last
        # (kept as "No Tag"); the tagged file beside it is an older one.
        stored = {
            **contents.objects,
            objects.DISCOVERY: tlv.encode(objects.DISCOVERY_TAG, untagged.read_bytes()),
        }
        contents = dataclasses.replace(contents, objects=stored)
    return VirtualPivCard(contents)


async def _inspect(name: str, **options: bool) -> tuple[CardIdentity, AcceptingValidator]:
    validator = AcceptingValidator()

    async def no_reader_keys(reader_id: int) -> None:
        return None

    authn = Authenticator(ChallengeBook(), validator, no_reader_keys)
    reading = await read_card(LoopbackTransport(_virtual_card(name)), authn.challenges, pin=PIN)
    return await inspect(reading, authn, today=AS_OF, **options), validator


async def _refused(name: str, **options: bool) -> CardRefused:
    with pytest.raises(CardRefused) as caught:
        await _inspect(name, **options)
    return caught.value


@pytest.mark.parametrize("name", GOLDEN)
async def test_golden_cards_pass_every_check_of_their_own_data(name: str) -> None:
    identity, validator = await _inspect(name)
    assert identity.proven == {"pki_cak", "pki_auth"}
    assert identity.checked[0].startswith("security object: signature, signer; data groups")
    signers = {purpose for _, purpose in validator.asked if purpose.startswith("content")}
    piv_i = "PIV-I" in name
    assert signers == {"content_signing_piv_i" if piv_i else "content_signing"}


@pytest.mark.parametrize(("name", "code"), REFUSED)
async def test_negative_cards_are_refused_for_their_own_reason(name: str, code: str) -> None:
    refused = await _refused(name)
    assert refused.code == code, refused.detail
    assert refused.detail


async def test_the_security_object_may_be_optional_by_policy() -> None:
    identity, _ = await _inspect(
        "55_FIPS_201-2_Missing_Security_Object", require_security_object=False
    )
    assert not any(line.startswith("security object") for line in identity.checked)


async def test_card_48s_older_tagged_discovery_file_fails_its_security_object_hash() -> None:
    # Card 48's folder holds two discovery objects: the security object hashes the newer
    # untagged one (PIN policy 60 10), which the virtual card serves; served the older
    # tagged file (40 00) instead, the card is refused for that data group's hash.
    folder = ICAM_CARDS / "cards" / "48_T=0_with_Non-Zero_PPS_LEN_Value"
    validator = AcceptingValidator()

    async def no_reader_keys(reader_id: int) -> None:
        return None

    authn = Authenticator(ChallengeBook(), validator, no_reader_keys)
    served = load_icam_card(folder)
    older = dataclasses.replace(
        served,
        objects={
            **served.objects,
            objects.DISCOVERY: (folder / "1 - Discovery Object").read_bytes(),
        },
        global_pin=None,
    )
    reading = await read_card(LoopbackTransport(VirtualPivCard(older)), authn.challenges, pin=PIN)
    with pytest.raises(CardRefused) as caught:
        await inspect(reading, authn, today=AS_OF)
    assert caught.value.code == "security_object_hash"
    assert "discovery object" in caught.value.detail
    reading = await read_card(LoopbackTransport(VirtualPivCard(served)), authn.challenges, pin=PIN)
    assert (await inspect(reading, authn, today=AS_OF)).card_uuid
