"""What accessd must answer for each ICAM test card, written from the card set's README.

Reason codes are accessd's stable codes (`accessd.validation.errors`, `CardRefused`); a
card may list more than one where the card set allows two readings (noted beside it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Expected:
    """Accept, or refuse with one of ``codes``; ``why`` is the README's reason."""

    why: str
    codes: frozenset[str] = frozenset()
    piv_i: bool = False
    #: Refused only where OCSP is used: with CRLs alone the card itself is good.
    ocsp_only: bool = False

    @property
    def accept(self) -> bool:
        return not self.codes

    def describe(self) -> str:
        return "accept" if self.accept else "refuse: " + " or ".join(sorted(self.codes))


def accept(why: str, *, piv_i: bool = False) -> Expected:
    return Expected(why, piv_i=piv_i)


def refuse(why: str, *codes: str, piv_i: bool = False, ocsp_only: bool = False) -> Expected:
    return Expected(why, frozenset(codes), piv_i, ocsp_only)


#: Folder name → expected outcome. Folders ending in -X expired in 2019.
CARDS: dict[str, Expected] = {
    "01_Golden_PIV": accept("golden PIV"),
    "02_Golden_PIV-I": accept("golden PIV-I", piv_i=True),
    "03_SKID_Mismatch": refuse("9A key pair substituted: SKID ≠ key", "skid_mismatch"),
    "04_Tampered_CHUID": refuse("CHUID tampered: signature invalid", "chuid_signature"),
    "05_Tampered_Certificates": refuse("9A/9E tampered: signature invalid", "bad_signature"),
    "06_Tampered_PHOTO": refuse("facial image tampered", "facial_image_signature"),
    "07_Tampered_Fingerprints": refuse("fingerprints tampered", "fingerprints_signature"),
    "08_Tampered_Security_Object": refuse(
        "security object tampered: signature invalid", "security_object_signature"
    ),
    "09_Expired_CHUID_Signer": refuse("CHUID signer certificate expired", "expired"),
    "10_Expired_Cert_Signer": refuse("issuing CA expired", "expired"),
    # Its CHUID expired on 2024-12-02 too: refusing it as expired is right since then.
    "11_Certs_Expire_after_CHUID": refuse(
        "9A expires after the CHUID", "certificate_outlives_chuid", "expired"
    ),
    "12_Certs_not_yet_valid": refuse("9A/9E not yet valid", "not_yet_valid"),
    "13_Certs_are_expired": refuse("9A/9E expired", "expired"),
    "14_Expired_CHUID": refuse("CHUID expired", "expired"),
    "15_CHUID_FASCN_mismatch": refuse("FASC-N: CHUID vs certificates", "fascn_mismatch"),
    # Its 9E FASC-N was altered without its LRC: it does not even decode.
    "16_Card_Authentication_FASCN_mismatch": refuse(
        "FASC-N: 9E vs CHUID", "fascn_mismatch", "malformed"
    ),
    "17_PHOTO_FASCN_mismatch": refuse("FASC-N: facial image", "facial_image_fascn_mismatch"),
    "18_Fingerprints_FASCN_mismatch": refuse("FASC-N: fingerprints", "fingerprints_fascn_mismatch"),
    "19_CHUID_UUID_mismatch": refuse(
        "UUID: CHUID vs certificates (PIV-I)", "uuid_mismatch", piv_i=True
    ),
    "20_Card_Authent_UUID_mismatch": refuse(
        "UUID: 9E vs CHUID (PIV-I)", "uuid_mismatch", piv_i=True
    ),
    "21_PHOTO_UUID_mismatch": refuse(
        "UUID: facial image (PIV-I)", "facial_image_uuid_mismatch", piv_i=True
    ),
    "22_Fingerprints_UUID_mismatch": refuse(
        "UUID: fingerprints (PIV-I)", "fingerprints_uuid_mismatch", piv_i=True
    ),
    "23_Public_Private_Key_mismatch": refuse(
        "private key does not match the certificate", "bad_signature", "proof_mismatch"
    ),
    "24_Revoked_Certificates": refuse("9A/9E revoked", "revoked"),
    "25_Disco_Object_Not_Present": accept("no discovery object"),
    "26_Disco_Object_Present_App_PIN_Only": accept("application PIN only"),
    "27_Disco_Object_Present_App_PIN_Primary": accept("application PIN primary"),
    "28_Disco_Object_Present_Global_PIN_Primary": accept("global PIN primary"),
    "37_Golden_FIPS_201-2_PIV_PPS_F=512_D=64": accept("golden PIV, ECC card auth"),
    "38_Bad_Hash_in_Sec_Object": refuse(
        "security object hash ≠ a data group", "security_object_hash"
    ),
    "39_Golden_FIPS_201-2_Fed_PIV-I": accept("golden federal PIV-I", piv_i=True),
    "39_Golden_FIPS_201-2_Fed_PIV-I-X": refuse("expired in 2019", "expired", piv_i=True),
    "41_Re-keyed_Card": accept("re-keyed card"),
    "42_OCSP_Expired": refuse("OCSP responder expired", "ocsp_responder", ocsp_only=True),
    # RFC 6960 lets a client skip checking a nocheck responder; accessd still refuses one
    # that a CRL it holds lists revoked (see accessd/validation/validator.py).
    "43_OCSP_revoked_w_nocheck": refuse(
        "OCSP responder revoked, ocsp-nocheck present", "ocsp_responder", ocsp_only=True
    ),
    "44_OCSP_revoked_wo_nocheck": refuse(
        "OCSP responder revoked", "ocsp_responder", ocsp_only=True
    ),
    "45_OCSP_Invalid_Signature": refuse(
        "OCSP responder signature invalid", "ocsp_responder", ocsp_only=True
    ),
    "46_Golden_FIPS_201-2_PIV": accept("golden PIV"),
    "46_Golden_FIPS_201-2_PIV_ICI_8": accept("golden PIV (ICI 8, no facial image)"),
    "46_Golden_FIPS_201-2_PIV_ICI_9": accept(
        "golden PIV (ICI 9: a replacement card carrying the ICI 8 card's biometric records)"
    ),
    "47_Golden_FIPS_201-2_PIV_SAN_Order": accept("golden PIV, SAN order"),
    "47_Golden_FIPS_201-2_PIV_SAN_Order-X": refuse("expired in 2019", "expired"),
    "48_T=0_with_Non-Zero_PPS_LEN_Value": accept("golden PIV (T=0 PPS variant)"),
    "49_FIPS_201-2_Facial_Image_CBEFF_Expired": refuse(
        "facial image CBEFF expired", "facial_image_expired"
    ),
    "50_FIPS_201-2_Facial_Image_CBEFF_Expires_before_CHUID": refuse(
        "facial image CBEFF expires before the CHUID", "facial_image_expires_before_chuid"
    ),
    "51_FIPS_201-2_Fingerprint_CBEFF_Expired": refuse(
        "fingerprint CBEFF expired", "fingerprints_expired"
    ),
    "52_FIPS_201-2_Fingerprint_CBEFF_Expires_before_CHUID": refuse(
        "fingerprint CBEFF expires before the CHUID", "fingerprints_expires_before_chuid"
    ),
    "53_FIPS_201-2_Large_Card_Auth_Cert": accept("large card auth certificate"),
    "54_Golden_FIPS_201-2_NFI_PIV-I": accept("golden NFI PIV-I", piv_i=True),
    "54_Golden_FIPS_201-2_NFI_PIV-I-X": refuse("expired in 2019", "expired", piv_i=True),
    "55_FIPS_201-2_Missing_Security_Object": refuse(
        "security object missing", "security_object_missing"
    ),
    # Its certificates expired on 2020-12-01 and its CHUID on 2023-12-02.
    "56_FIPS_201-2_Signer_Expires": refuse(
        "content signer expires before the CHUID", "content_signer_expires_before_chuid", "expired"
    ),
    "57_Revoked_CHUID_Cert": refuse("CHUID signer revoked", "revoked"),
    "58_Revoked_Card_Auth_Cert": refuse("9E revoked", "revoked"),
    # Not in the README's list: card 51 with a valid fingerprint record, a golden variant.
    "59_Valid_CBEFF_for_Card_51": accept("golden variant of card 51 (valid fingerprints)"),
}


#: The README's golden cards: what the card-level checks must accept (46_ICI_9 among them:
#: its biometric records are those of the ICI 8 card it replaced). Card 59 is not in the
#: README's list, and the -X variants, which expired in 2019, are refused.
GOLDEN: tuple[str, ...] = tuple(
    name for name, expected in CARDS.items() if expected.accept and not name.startswith("59")
)
#: The golden cards that are PIV-I.
PIV_I: frozenset[str] = frozenset(name for name in GOLDEN if CARDS[name].piv_i)
