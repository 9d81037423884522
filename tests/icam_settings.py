"""The settings an operator writes to trust GSA's ICAM test PKI (the README's facts)."""

from __future__ import annotations

from pathlib import Path

from tests.paths import ICAM_CARDS

_TEST_ARC = "2.16.840.1.101.3.2.1.48."
#: The FPKI test-arc policies, in the roots' policy domain: the PIV-I CAs map .78/.79/.80
#: to the end entities' .248/.249/.252, so the PIV-I cards are matched by the former.
ICAM_POLICIES: dict[str, list[str]] = {
    "piv_auth": [_TEST_ARC + "11", _TEST_ARC + "78"],
    "card_auth": [_TEST_ARC + "13", _TEST_ARC + "79"],
    "content_signing": [_TEST_ARC + "86"],
    "content_signing_piv_i": [_TEST_ARC + "80"],
}
CA_DIR = ICAM_CARDS / "cards" / "ICAM_CA_and_Signer"
TRUST_ANCHORS = [
    CA_DIR / "ICAM_Test_Card_PIV_Root_CA_-_gold_gen1-3.crt",
    CA_DIR / "ICAM_Test_Card_PIV-I_Root_CA_-_gold_gen3.crt",
]
#: Card 24's issuing CA as its certificates name it (AKI with the old serial): no AIA
#: file has it any more, so an operator configures it.
CARD_24_CA = ICAM_CARDS / "extra" / "ICAM_Test_Card_PIV_Signing_CA_-_gold_gen1-2_0162e00.crt"


def offline_intermediates() -> list[Path]:
    """Every CA certificate of the set, for a site that cannot fetch caIssuers either."""
    return [*sorted(CA_DIR.glob("*CA*.crt")), CARD_24_CA]


def revocation_crls() -> list[Path]:
    """The set's CRLs, the two signing CAs' as they were while they listed revocations."""
    with_revocations = sorted((ICAM_CARDS / "crls-with-revocations").glob("*.crl"))
    replaced = {p.name for p in with_revocations}
    others = [p for p in sorted((CA_DIR / "crls").glob("*.crl")) if p.name not in replaced]
    return [*others, *with_revocations]
