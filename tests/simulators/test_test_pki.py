"""The test PKI: certificate profiles, CRLs, OCSP answers and the loopback repository."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from drivers.piv import oids, tlv
from drivers.piv.chuid import Chuid
from simulators.pki import PkiServer, TestPki, free_port


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create("http://127.0.0.1:1")


def _policies(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return {p.policy_identifier.dotted_string for p in ext}


def test_card_certificates_carry_the_piv_profile(pki: TestPki) -> None:
    card = pki.issue_card(algorithms={"9a": "rsa2048", "9e": "p384"})
    auth, cak = card.certificates["9a"], card.certificates["9e"]
    assert _policies(auth) == {oids.POLICY_PIV_AUTH}
    assert _policies(cak) == {oids.POLICY_CARD_AUTH}
    eku = cak.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and [o.dotted_string for o in eku.value] == [oids.EKU_PIV_CARD_AUTH]
    san = auth.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    (other,) = san.get_values_for_type(x509.OtherName)
    assert other.type_id.dotted_string == oids.SAN_FASCN
    assert tlv.decode_one(other.value).value == card.fascn.encode()
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:uuid:{card.card_uuid}"]
    assert isinstance(cak.public_key(), ec.EllipticCurvePublicKey)
    assert cak.public_key().curve.name == "secp384r1"
    auth.verify_directly_issued_by(pki.ca.cert)
    pki.ca.cert.verify_directly_issued_by(pki.root.cert)


def test_chuid_signature_covers_the_signed_content(pki: TestPki) -> None:
    good = Chuid.decode(pki.issue_card().chuid)
    tampered = Chuid.decode(pki.issue_card(variant="tampered_chuid").chuid)
    for chuid, intact in ((good, True), (tampered, False)):
        signed = cms.ContentInfo.load(chuid.signature)["content"]
        assert signed["encap_content_info"]["content_type"].dotted == oids.CONTENT_CHUID
        assert signed["encap_content_info"]["content"].native is None  # detached
        attrs = signed["signer_infos"][0]["signed_attrs"]
        digest = next(a["values"][0].native for a in attrs if a["type"].native == "message_digest")
        assert (digest == hashlib.sha256(chuid.tbs).digest()) is intact


def test_revoked_card_is_on_the_crl_and_good_one_is_not(pki: TestPki) -> None:
    good = pki.issue_card()
    bad = pki.issue_card(variant="revoked")
    crl = x509.load_der_x509_crl(pki.crl_der("ca"))
    assert crl.is_signature_valid(pki.ca.key.public_key())  # type: ignore[arg-type]
    for cert in bad.certificates.values():
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    for cert in good.certificates.values():
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None


def _ask(pki: TestPki, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return ocsp.load_der_ocsp_response(
        pki.ocsp_response_der(request.public_bytes(serialization.Encoding.DER))
    )


def test_ocsp_answers_good_revoked_and_refuses_strangers(pki: TestPki) -> None:
    good = pki.issue_card().certificates["9e"]
    bad = pki.issue_card(variant="revoked").certificates["9e"]
    stranger = pki.issue_card(variant="wrong_issuer").certificates["9e"]
    assert _ask(pki, good, pki.ca.cert).certificate_status == ocsp.OCSPCertStatus.GOOD
    revoked = _ask(pki, bad, pki.ca.cert)
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.key_compromise
    refused = _ask(pki, stranger, pki.other_ca.cert)
    assert refused.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    garbage = ocsp.load_der_ocsp_response(pki.ocsp_response_der(b"\x30\x03\x02\x01\x00"))
    assert garbage.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_repository_serves_crls_certificates_and_ocsp_and_goes_offline() -> None:
    port = free_port()
    pki = TestPki.create(f"http://127.0.0.1:{port}")
    card = pki.issue_card(variant="revoked")
    cert = card.certificates["9a"]
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.ca.cert, hashes.SHA1()).build()
    async with PkiServer(pki, port) as server, aiohttp.ClientSession() as http:
        (url,) = (
            dp.full_name[0].value
            for dp in cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        )
        async with http.get(url) as answer:
            crl = x509.load_der_x509_crl(await answer.read())
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        async with http.get(f"{server.url}/certs/ca.crt") as answer:
            assert x509.load_der_x509_certificate(await answer.read()) == pki.ca.cert
        async with http.post(
            f"{server.url}/ocsp", data=request.public_bytes(serialization.Encoding.DER)
        ) as answer:
            status = ocsp.load_der_ocsp_response(await answer.read()).certificate_status
        assert status == ocsp.OCSPCertStatus.REVOKED
        server.online = False
        async with http.get(url) as answer:
            assert answer.status == 503
        async with http.get(f"{server.url}/crl/nothing.crl") as answer:
            assert answer.status == 503
        server.online = True
        async with http.get(f"{server.url}/crl/nothing.crl") as answer:
            assert answer.status == 404
    assert server.requests["/crl/ca.crl"] == 2
    assert server.requests["POST /ocsp"] == 1
