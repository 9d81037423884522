"""A test PKI shaped like the Federal PKI's PIV issuers, with CRLs and OCSP answers.

Two hierarchies: the trusted one (root → issuing CA → PIV certificates and a content
signer) and an unrelated one for "wrong issuer" cards. Certificates carry what the FPKI
common profile puts in them: the PIV policies, the card-authentication and content-signing
extended key usages, the FASC-N and card UUID in subjectAltName, CRL distribution points
and OCSP locations under ``base_url`` (served by ``simulators.pki.server.PkiServer``).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from drivers.piv import oids, tlv
from drivers.piv.chuid import Chuid
from drivers.piv.fascn import Fascn
from simulators.pki.cms import sign_chuid, sign_security_object

Algorithm = Literal["rsa2048", "p256", "p384"]
Variant = Literal["good", "expired", "revoked", "wrong_issuer", "tampered_chuid"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Container IDs of the data groups the security object covers (SP 800-73-4 Table 1).
CONTAINER_CHUID = 0x3000
DG_CHUID = 1
DEFAULT_ALGORITHMS: dict[str, Algorithm] = {
    "9a": "rsa2048",
    "9c": "p256",
    "9d": "p256",
    "9e": "p256",
}


def new_key(algorithm: Algorithm) -> PrivateKey:
    """A fresh private key of one of the PIV algorithms."""
    if algorithm == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown algorithm {algorithm!r}")


@dataclass(frozen=True, slots=True)
class Issued:
    """A key and the certificate for it."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def __repr__(self) -> str:  # keys never reach a log
        return f"Issued({self.cert.subject.rfc4514_string()!r})"


@dataclass(slots=True)
class CardMaterial:
    """Everything personalised onto one PIV card: keys, certificates, signed objects."""

    name: str
    fascn: Fascn
    card_uuid: str
    expires: date
    pin: str
    puk: str
    keys: dict[str, PrivateKey]
    certificates: dict[str, x509.Certificate]
    chuid: bytes
    security_object: bytes
    variant: Variant = "good"

    def __repr__(self) -> str:
        return f"CardMaterial({self.name!r}, {self.fascn.redacted()}, {self.variant})"


@dataclass(slots=True)
class _Hierarchy:
    name: str
    root: Issued
    ca: Issued
    content_signer: Issued
    revoked: dict[int, tuple[datetime, x509.ReasonFlags]] = field(default_factory=dict)


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _policies(*policy_oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in policy_oids]
    )


def _fascn_other_name(fascn: Fascn) -> x509.OtherName:
    # The FASC-N travels as an OCTET STRING inside the otherName (FIPS 201-3, 4.2.2.1).
    value = b"\x04" + tlv.encode_length(len(fascn.encode())) + fascn.encode()
    return x509.OtherName(x509.ObjectIdentifier(oids.SAN_FASCN), value)


def _sha256_ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


class TestPki:
    """Root, issuing CA and content signer, and the cards they personalise."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self, base_url: str, trusted: _Hierarchy, other: _Hierarchy, now: datetime
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._trusted = trusted
        self._other = other
        self._now = now
        self.crl_lifetime = timedelta(days=1)
        self.ocsp_lifetime = timedelta(hours=4)
        self.cards: list[CardMaterial] = []
        #: serial → (certificate, hierarchy name, issuing level) for OCSP and revocation.
        self._issued: dict[int, tuple[x509.Certificate, str]] = {}

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        base_url: str = "http://127.0.0.1:8099",
        *,
        ca_algorithm: Algorithm = "p256",
        now: datetime | None = None,
    ) -> TestPki:
        """A fresh PKI; CRL and OCSP locations in the certificates point under ``base_url``."""
        moment = now or datetime.now(UTC)
        base = base_url.rstrip("/")
        trusted = cls._hierarchy("Test", base, "", ca_algorithm, moment)
        other = cls._hierarchy("Other", base, "other-", ca_algorithm, moment)
        pki = cls(base, trusted, other, moment)
        for h in (trusted, other):
            for issued in (h.ca, h.content_signer):
                pki._issued[issued.cert.serial_number] = (issued.cert, h.name)
        return pki

    @staticmethod
    def _hierarchy(
        label: str, base: str, prefix: str, algorithm: Algorithm, now: datetime
    ) -> _Hierarchy:
        org = f"{label} Federal Agency"
        root_key = new_key(algorithm)
        root_name = _name(f"{label} PIV Root CA", org)
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=365))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(_sha256_ski(root_key), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        root = Issued(root_key, root_cert)
        ca_key = new_key(algorithm)
        ca_cert = (
            TestPki._builder(
                root, ca_key, _name(f"{label} PIV Issuing CA", org), now - timedelta(days=30)
            )
            .not_valid_after(now + timedelta(days=3000))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                _policies(
                    oids.POLICY_PIV_AUTH,
                    oids.POLICY_CARD_AUTH,
                    oids.POLICY_HARDWARE,
                    oids.POLICY_PIV_CONTENT_SIGNING,
                ),
                critical=False,
            )
            .add_extension(TestPki._cdp(f"{base}/crl/{prefix}root.crl"), critical=False)
            .sign(root.key, hashes.SHA256())
        )
        ca = Issued(ca_key, ca_cert)
        signer_key = new_key("p256")
        signer_cert = (
            TestPki._builder(
                ca, signer_key, _name(f"{label} PIV Content Signer", org), now - timedelta(days=30)
            )
            .not_valid_after(now + timedelta(days=2000))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.ObjectIdentifier(oids.EKU_PIV_CONTENT_SIGNING)]),
                critical=False,
            )
            .add_extension(_policies(oids.POLICY_PIV_CONTENT_SIGNING), critical=False)
            .add_extension(TestPki._cdp(f"{base}/crl/{prefix}ca.crl"), critical=False)
            .add_extension(TestPki._aia(base, prefix), critical=False)
            .sign(ca.key, hashes.SHA256())
        )
        return _Hierarchy(label, root, ca, Issued(signer_key, signer_cert))

    @staticmethod
    def _builder(
        issuer: Issued, key: PrivateKey, subject: x509.Name, not_before: datetime
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .add_extension(_sha256_ski(key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        )

    @staticmethod
    def _cdp(url: str) -> x509.CRLDistributionPoints:
        return x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
        )

    @staticmethod
    def _aia(base: str, prefix: str) -> x509.AuthorityInformationAccess:
        return x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(f"{base}/{prefix}ocsp"),
                ),
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(f"{base}/certs/{prefix}ca.crt"),
                ),
            ]
        )

    # --- the hierarchies ------------------------------------------------------------------

    @property
    def root(self) -> Issued:
        return self._trusted.root

    @property
    def ca(self) -> Issued:
        return self._trusted.ca

    @property
    def content_signer(self) -> Issued:
        return self._trusted.content_signer

    @property
    def other_root(self) -> Issued:
        return self._other.root

    @property
    def other_ca(self) -> Issued:
        return self._other.ca

    @property
    def other_content_signer(self) -> Issued:
        return self._other.content_signer

    def _hier(self, name: str) -> _Hierarchy:
        return self._trusted if name == self._trusted.name else self._other

    # --- cards ----------------------------------------------------------------------------

    def issue_card(
        self,
        *,
        name: str = "Test Cardholder",
        fascn: Fascn | None = None,
        card_uuid: str | None = None,
        algorithms: dict[str, Algorithm] | None = None,
        variant: Variant = "good",
        pin: str = "123456",
        puk: str = "12345678",
        valid_days: int = 5 * 365,
    ) -> CardMaterial:
        """Personalise a card: a key and certificate per slot, a signed CHUID and security
        object. ``variant`` makes the bad cards a validator must refuse."""
        algorithms = dict(algorithms or DEFAULT_ALGORITHMS)
        fascn = fascn or self.random_fascn()
        card_uuid = card_uuid or str(uuid.uuid4())
        hier = self._other if variant == "wrong_issuer" else self._trusted
        prefix = "other-" if variant == "wrong_issuer" else ""
        now = self._now
        if variant == "expired":
            not_before, not_after = now - timedelta(days=400), now - timedelta(days=1)
        else:
            not_before, not_after = now - timedelta(days=1), now + timedelta(days=valid_days)
        keys: dict[str, PrivateKey] = {}
        certs: dict[str, x509.Certificate] = {}
        for slot, algorithm in algorithms.items():
            key = new_key(algorithm)
            cert = self._card_certificate(
                hier, prefix, slot, key, name, fascn, card_uuid, not_before, not_after
            )
            keys[slot], certs[slot] = key, cert
            self._issued[cert.serial_number] = (cert, hier.name)
        expires = not_after.date()
        chuid = Chuid(fascn=fascn, card_uuid=card_uuid, expires=expires, signature=b"")
        tbs = chuid.signed_content()
        signature = sign_chuid(tbs, hier.content_signer.cert, hier.content_signer.key)
        signed = Chuid(fascn=fascn, card_uuid=card_uuid, expires=expires, signature=signature)
        if variant == "tampered_chuid":
            # Another credential number after signing: the signature no longer matches.
            forged = Fascn(**{**_fields(fascn), "credential_number": _other_digits(fascn)})
            signed = Chuid(fascn=forged, card_uuid=card_uuid, expires=expires, signature=signature)
        chuid_bytes = signed.encode()
        mapping = bytes((DG_CHUID,)) + CONTAINER_CHUID.to_bytes(2, "big")
        so_cms = sign_security_object(
            {DG_CHUID: tlv.decode_one(chuid_bytes).value},
            hier.content_signer.cert,
            hier.content_signer.key,
        )
        security_object = tlv.encode(
            0x53, tlv.encode(0xBA, mapping) + tlv.encode(0xBB, so_cms) + tlv.encode(0xFE, b"")
        )
        card = CardMaterial(
            name=name,
            fascn=fascn,
            card_uuid=card_uuid,
            expires=expires,
            pin=pin,
            puk=puk,
            keys=keys,
            certificates=certs,
            chuid=chuid_bytes,
            security_object=security_object,
            variant=variant,
        )
        if variant == "revoked":
            for cert in certs.values():
                self.revoke(cert)
        self.cards.append(card)
        return card

    def _card_certificate(
        self,
        hier: _Hierarchy,
        prefix: str,
        slot: str,
        key: PrivateKey,
        name: str,
        fascn: Fascn,
        card_uuid: str,
        not_before: datetime,
        not_after: datetime,
    ) -> x509.Certificate:
        org = f"{hier.name} Federal Agency"
        san: list[x509.GeneralName] = [
            _fascn_other_name(fascn),
            x509.UniformResourceIdentifier(f"urn:uuid:{card_uuid}"),
        ]
        # FPKI profile: the card-authentication certificate names no person.
        subject = _name(card_uuid if slot == "9e" else name, org)
        builder = (
            self._builder(hier.ca, key, subject, not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(self._cdp(f"{self.base_url}/crl/{prefix}ca.crl"), critical=False)
            .add_extension(self._aia(self.base_url, prefix), critical=False)
        )
        is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
        if slot == "9a":
            usage = _usage(digital_signature=True)
            policy = oids.POLICY_PIV_AUTH
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SMARTCARD_LOGON]
                ),
                critical=False,
            )
        elif slot == "9e":
            usage = _usage(digital_signature=True)
            policy = oids.POLICY_CARD_AUTH
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.ObjectIdentifier(oids.EKU_PIV_CARD_AUTH)]),
                critical=True,
            )
        elif slot == "9c":
            usage = _usage(digital_signature=True, content_commitment=True)
            policy = oids.POLICY_HARDWARE
        elif slot == "9d":
            usage = _usage(key_agreement=is_ec, key_encipherment=not is_ec)
            policy = oids.POLICY_HARDWARE
        else:
            raise ValueError(f"no certificate profile for slot {slot!r}")
        return (
            builder.add_extension(usage, critical=True)
            .add_extension(_policies(policy), critical=False)
            .sign(hier.ca.key, hashes.SHA256())
        )

    @staticmethod
    def random_fascn(agency: str = "9999", system: str = "0001") -> Fascn:
        """A FASC-N with a random credential number and person identifier."""
        return Fascn(
            agency_code=agency,
            system_code=system,
            credential_number=f"{secrets.randbelow(10**6):06d}",
            credential_series="1",
            individual_credential_issue="1",
            person_identifier=f"{secrets.randbelow(10**10):010d}",
            organizational_category="1",
            organizational_identifier=agency,
            association_category="1",
        )

    # --- revocation -----------------------------------------------------------------------

    def revoke(
        self,
        cert: x509.Certificate,
        reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
        *,
        at: datetime | None = None,
    ) -> None:
        """Put ``cert`` on its issuer's next CRL and OCSP answers, revoked ``at`` (default a
        minute ago: a validator whose clock runs a little behind, as tests' clocks do, must
        already see it revoked; a revocation dated after the validation time does not count)."""
        _, hier_name = self._issued[cert.serial_number]
        when = at or datetime.now(UTC) - timedelta(minutes=1)
        self._hier(hier_name).revoked[cert.serial_number] = (when, reason)

    def crl_der(self, which: str = "ca", *, next_update: datetime | None = None) -> bytes:
        """A fresh CRL: ``ca``/``root`` of the trusted hierarchy, ``other-ca``/``other-root``."""
        hier = self._other if which.startswith("other-") else self._trusted
        level = which.removeprefix("other-")
        if level not in ("ca", "root"):
            raise ValueError(f"no CRL named {which!r}")
        issuer = hier.ca if level == "ca" else hier.root
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(now - timedelta(minutes=1))
            .next_update(next_update or now + self.crl_lifetime)
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        )
        for serial, (when, reason) in hier.revoked.items():
            cert, _ = self._issued[serial]
            if cert.issuer != issuer.cert.subject:
                continue
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when)
                .add_extension(x509.CRLReason(reason), critical=False)
                .build()
            )
        crl = builder.sign(issuer.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def ocsp_response_der(self, request_der: bytes, *, prefix: str = "") -> bytes:
        """The issuing CA's own answer to an OCSP request (CA-signed responses)."""
        hier = self._other if prefix == "other-" else self._trusted
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            ).public_bytes(serialization.Encoding.DER)
        found = self._issued.get(request.serial_number)
        if found is None or found[0].issuer != hier.ca.cert.subject:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED
            ).public_bytes(serialization.Encoding.DER)
        cert = found[0]
        now = datetime.now(UTC)
        revoked = hier.revoked.get(cert.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=hier.ca.cert,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + self.ocsp_lifetime,
            revocation_time=revoked[0] if revoked else None,
            revocation_reason=revoked[1] if revoked else None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, hier.ca.cert)
        for ext in request.extensions:
            if isinstance(ext.value, x509.OCSPNonce):
                builder = builder.add_extension(ext.value, critical=False)
        response = builder.sign(_issuer_key(hier.ca), hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def certificate_der(self, which: str) -> bytes:
        """``ca``/``root``/``other-ca``/``other-root`` certificates, for AIA caIssuers."""
        hier = self._other if which.startswith("other-") else self._trusted
        level = which.removeprefix("other-")
        issued = {"ca": hier.ca, "root": hier.root}.get(level)
        if issued is None:
            raise ValueError(f"no certificate named {which!r}")
        return issued.der


def _issuer_key(issued: Issued) -> CertificateIssuerPrivateKeyTypes:
    return issued.key


def _usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _fields(fascn: Fascn) -> dict[str, str]:
    return {
        "agency_code": fascn.agency_code,
        "system_code": fascn.system_code,
        "credential_number": fascn.credential_number,
        "credential_series": fascn.credential_series,
        "individual_credential_issue": fascn.individual_credential_issue,
        "person_identifier": fascn.person_identifier,
        "organizational_category": fascn.organizational_category,
        "organizational_identifier": fascn.organizational_identifier,
        "association_category": fascn.association_category,
    }


def _other_digits(fascn: Fascn) -> str:
    number = int(fascn.credential_number)
    return f"{(number + 1) % 10**6:06d}"
