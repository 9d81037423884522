"""NIST PKITS path-validation vectors run through accessd's validator wrapper.

The vectors come from the pyhanko-certvalidator sdist (`tests/vectors.sh` puts them in
tests/.vectors); `pkits.json` gives each case's certificates, CRLs, policy inputs and
whether validation must fail. Every case is run. Our validator always requires revocation
data for every certificate in the path (fail closed), where the library's own run leaves
it optional for sections 4.1-4.3; those cases carry CRLs, so the expectation holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from accessd.validation.errors import ValidationError
from accessd.validation.purpose import ANY_POLICY, Purpose
from accessd.validation.revocation import RevocationStore
from accessd.validation.validator import CertificateValidator
from tests.paths import TESTS

VECTORS = TESTS / ".vectors" / "nist_pkits"
# Inside every PKITS certificate's and CRL's validity (2010 to 2030).
MOMENT = datetime(2022, 5, 1, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    not (VECTORS / "pkits.json").is_file(),
    reason="PKITS vectors absent: run tests/vectors.sh to fetch them into tests/.vectors",
)


# Left out, with the reason: end-entity certificates whose DSA key inherits its parameters
# from the issuer (4.1.5 and 4.1.6) do not parse in `cryptography`, which the validator
# needs for the public key it returns; PIV keys are RSA or ECC only (SP 800-78-5).
LEFT_OUT = {
    "40105": "DSA parameter inheritance: the leaf key does not parse in cryptography",
    "40106": "DSA parameter inheritance: the leaf key does not parse in cryptography",
}


def _cases() -> list[Any]:
    if not (VECTORS / "pkits.json").is_file():
        return []
    cases: list[dict[str, Any]] = json.loads((VECTORS / "pkits.json").read_text())
    return [
        pytest.param(c, marks=pytest.mark.skip(reason=LEFT_OUT[c["id"]]))
        if c["id"] in LEFT_OUT
        else c
        for c in cases
    ]


def _cert(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((VECTORS / "certs" / name).read_bytes())


def _purpose(params: dict[str, Any]) -> Purpose:
    return Purpose(
        "pkits",
        policies=frozenset(params.get("user_initial_policy_set", [ANY_POLICY])),
        explicit_policy=bool(params.get("initial_explicit_policy", False)),
        policy_mapping_inhibit=bool(params.get("initial_policy_mapping_inhibit", False)),
        any_policy_inhibit=bool(params.get("initial_any_policy_inhibit", False)),
    )


# How the library's error classes in pkits.json must come out of our translation.
_EXPECTED_CODES = {
    "RevokedError": {"revoked"},
    "InsufficientRevinfoError": {"revocation_unknown"},
    "StaleRevinfoError": {"revocation_unknown"},
}


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"{c['id']}-{c['name']}")
async def test_pkits_case(case: dict[str, Any]) -> None:
    store = RevocationStore(grace=timedelta(0), clock=lambda: MOMENT)
    for name in ["TrustAnchorRootCRL.crl", *case.get("crls", [])]:
        store.add_crl((VECTORS / "crls" / name).read_bytes())
    validator = CertificateValidator(
        [_cert("TrustAnchorRootCertificate.crt")],
        store,
        intermediates=[(VECTORS / "certs" / n).read_bytes() for n in case.get("other_certs", [])],
        # The vectors are signed with SHA-1 and include 1024-bit DSA, as the library's own
        # PKITS run allows.
        algorithm_policy=DisallowWeakAlgorithmsPolicy(
            weak_hash_algos=frozenset({"md2", "md5"}), dsa_key_size_threshold=1024
        ),
    )
    der = (VECTORS / "certs" / case["cert"]).read_bytes()
    purpose = _purpose(case.get("params", {}))
    expected = case.get("error")
    if expected is None:
        result = await validator.validate(der, purpose)
        assert result.serial == x509.load_der_x509_certificate(der).serial_number
        assert result.revocation_source == "crl"
    else:
        with pytest.raises(ValidationError) as caught:
            await validator.validate(der, purpose)
        codes = _EXPECTED_CODES.get(expected["class"])
        if codes is not None:
            assert caught.value.code in codes, caught.value.detail
        else:
            assert caught.value.code not in {"revoked", "revocation_unknown"}, caught.value.detail
