"""The ICAM test PKI's repository on loopback: CRLs, caIssuers files and OCSP responders.

The ICAM certificates name hosts under apl-test.cite.fpki-lab.gov, which no test can reach.
`IcamRepositoryServer` serves each of those hosts under its own path
(``/<host>/crls/…``, ``/<host>/aia/…``, ``POST /<host>`` for OCSP), and `mirrors()` gives the
``revocation_mirrors`` setting that sends accessd there, as an isolated site would
mirror the CAs. The CRLs are the card set's, with the two signing CAs' CRLs that still list
cards 24, 57 and 58 revoked. Each OCSP host answers with the responder the card set
meant for it (valid, expired, revoked with and without id-pkix-ocsp-nocheck, bad
signature), signing with its key from responder/responder-certs.tar, and tells the status
the CA's CRL gives.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from asn1crypto import keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp

from simulators.icam_card import load_certificate
from simulators.piv_card import PrivateKey
from simulators.pki.server import CERT_TYPE, CRL_TYPE, OCSP_RESPONSE_TYPE, RepositoryServer

REPOSITORY_HOSTS = (
    "http.apl-test.cite.fpki-lab.gov",
    "http.apl1-test.cite.fpki-lab.gov",
    "http.apl3-test.cite.fpki-lab.gov",
    "http.apl4-test.cite.fpki-lab.gov",
)
#: OCSP host → the responder certificate (and key) the card set made for it.
RESPONDERS = {
    "ocsp.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV_OCSP_Valid_Signer_gen1-2",
    "ocspGen3.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV_OCSP_Valid_Signer_gen3",
    "ocspGen3p384.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV_OCSP_Valid_Signer_P384_gen3",
    "ocsp-pivi.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV-I_OCSP_Valid_Signer_gen3",
    "ocspExpired.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV_OCSP_Expired_Signer_gen3",
    "ocspRevoked.apl-test.cite.fpki-lab.gov": (
        "ICAM_Test_Card_PIV_OCSP_Revoked_Signer_No_Check_Present_gen3"
    ),
    "ocspNocheckNotPresent.apl-test.cite.fpki-lab.gov": (
        "ICAM_Test_Card_PIV_OCSP_Revoked_Signer_No_Check_Not_Present_gen3"
    ),
    "ocspInvalidSig.apl-test.cite.fpki-lab.gov": "ICAM_Test_Card_PIV_OCSP_Invalid_Sig_Signer_gen3",
}
ANSWER_LIFETIME = timedelta(hours=12)
P7C_TYPE = "application/pkcs7-mime"


@dataclass(frozen=True, slots=True)
class Responder:
    certificate: x509.Certificate
    key: PrivateKey

    def __repr__(self) -> str:
        return f"Responder({self.certificate.subject.rfc4514_string()!r})"


@dataclass(slots=True)
class IcamRepository:
    """The card set's CA certificates, CRLs, caIssuers files and OCSP responders."""

    cas: list[x509.Certificate]
    crls: dict[str, bytes]  # file name → DER
    aia: dict[str, bytes]  # file name → DER (PKCS#7 bundles)
    responders: dict[str, Responder]  # OCSP host → responder
    _revoked: dict[bytes, dict[int, x509.RevokedCertificate]] = field(default_factory=dict)

    @classmethod
    def load(cls, card_set: Path) -> IcamRepository:
        """Reads the repository from the card set at ``card_set`` (``…/icam-cards``)."""
        ca_dir = card_set / "cards" / "ICAM_CA_and_Signer"
        cas = [load_certificate(p) for p in sorted(ca_dir.glob("*.crt"))]
        cas += [load_certificate(p) for p in sorted((card_set / "extra").glob("*.crt"))]
        crls = {p.name: p.read_bytes() for p in sorted((ca_dir / "crls").glob("*.crl"))}
        # The two signing CAs' CRLs as they were while they still listed revoked cards.
        crls |= {
            p.name: p.read_bytes()
            for p in sorted((card_set / "crls-with-revocations").glob("*.crl"))
        }
        aia = {p.name: p.read_bytes() for p in sorted((ca_dir / "aia").glob("*.p7c"))}
        repository = cls(cas, crls, aia, _responders(card_set / "responder"))
        repository._index_revocations()
        return repository

    def _index_revocations(self) -> None:
        for der in self.crls.values():
            try:
                crl = x509.load_der_x509_crl(der)
            except ValueError:
                continue  # the set's deliberately broken CRLs
            for ca in self.cas:
                if ca.subject == crl.issuer and _signed_by(crl, ca):
                    entries = self._revoked.setdefault(_key_hash(ca), {})
                    entries.update((r.serial_number, r) for r in crl)

    def ocsp_answer(self, host: str, request_der: bytes, now: datetime) -> bytes:
        """The DER OCSP response the responder of ``host`` gives to ``request_der``."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        responder = self.responders.get(host)
        if responder is None or not isinstance(request.hash_algorithm, hashes.SHA1):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        revoked = self._revoked.get(request.issuer_key_hash, {}).get(request.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=hashes.SHA1(),  # noqa: S303 -- the hash the request used
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=5),
            next_update=now + ANSWER_LIFETIME,
            revocation_time=revoked.revocation_date_utc if revoked else None,
            revocation_reason=_reason(revoked),
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
        builder = builder.certificates([responder.certificate])
        response = builder.sign(responder.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


class IcamRepositoryServer(RepositoryServer):
    """Serves an `IcamRepository` on loopback, each ICAM host under ``/<host>``."""

    def __init__(self, repository: IcamRepository, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.repository = repository

    def mirrors(self) -> dict[str, str]:
        """The ``revocation_mirrors`` setting that sends every ICAM URL here."""
        hosts = (*REPOSITORY_HOSTS, *self.repository.responders)
        return {f"http://{h}": f"{self.url}/{h}" for h in hosts}

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/{host}/crls/{name}", self._crl)
        app.router.add_get("/{host}/aia/{name}", self._aia)
        app.router.add_post("/{host}", self._ocsp)
        app.router.add_post("/{host}/", self._ocsp)

    async def _crl(self, request: web.Request) -> web.Response:
        self._count(request)
        body = self.repository.crls.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound(text="no such CRL")
        return web.Response(body=body, content_type=CRL_TYPE)

    async def _aia(self, request: web.Request) -> web.Response:
        self._count(request)
        name = request.match_info["name"]
        body = self.repository.aia.get(name)
        if body is None:
            raise web.HTTPNotFound(text="no such caIssuers file")
        return web.Response(body=body, content_type=P7C_TYPE if name.endswith("c") else CERT_TYPE)

    async def _ocsp(self, request: web.Request) -> web.Response:
        self._count(request)
        answer = self.repository.ocsp_answer(
            request.match_info["host"], await request.read(), datetime.now(UTC)
        )
        return web.Response(body=answer, content_type=OCSP_RESPONSE_TYPE)


def _responders(directory: Path) -> dict[str, Responder]:
    with tarfile.open(directory / "responder-certs.tar") as tar:
        files = {
            Path(m.name).name: tar.extractfile(m)
            for m in tar.getmembers()
            if m.isfile() and m.name.endswith((".crt", ".p12"))
        }
        data = {name: f.read() for name, f in files.items() if f is not None}
    found: dict[str, Responder] = {}
    for host, stem in RESPONDERS.items():
        cert_der, p12 = data.get(f"{stem}.crt"), data.get(f"{stem}.p12")
        if cert_der is None or p12 is None:
            continue
        key, _, _ = pkcs12.load_key_and_certificates(p12, b"")
        cert = (
            x509.load_pem_x509_certificate(cert_der)
            if b"-----BEGIN" in cert_der
            else x509.load_der_x509_certificate(cert_der)
        )
        if key is not None:
            found[host] = Responder(cert, key)  # type: ignore[arg-type]
    return found


def _key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subject public key bits, as OCSP's CertID names an issuer."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    return hashlib.sha1(bits).digest()  # noqa: S324 -- OCSP CertID's hash


def _signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _reason(revoked: x509.RevokedCertificate | None) -> x509.ReasonFlags | None:
    if revoked is None:
        return None
    try:
        return revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )
