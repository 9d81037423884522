"""CMS SignedData as PIV content signers make it: the CHUID and security-object signatures.

SP 800-73-4 signs the CHUID with a detached SignedData of eContentType
id-PIV-CHUIDSecurityObject, and the security object with an attached SignedData over an ICAO
LDS security object. asn1crypto builds the structures; `cryptography` makes the signatures.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import Certificate

from drivers.piv import oids


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    """ICAO 9303 LDSSecurityObject (version 0), the content of the PIV security object."""

    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
    ]


def _sign(key: CertificateIssuerPrivateKeyTypes, data: bytes) -> tuple[bytes, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256()), "sha256_rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    raise TypeError(f"cannot sign with {type(key).__name__}")


def signed_data(
    *,
    content_type: str,
    content: bytes,
    detached: bool,
    signer: Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    signing_time: datetime | None = None,
) -> bytes:
    """A DER ContentInfo holding SignedData over ``content`` by ``signer``."""
    signer_cert = asn1_x509.Certificate.load(signer.public_bytes(serialization.Encoding.DER))
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute(
                {
                    "type": "signing_time",
                    "values": [cms.Time({"utc_time": signing_time or datetime.now(UTC)})],
                }
            ),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]}
            ),
        ]
    )
    signature, algorithm = _sign(key, attrs.dump())
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": signer_cert.issuer, "serial_number": signer_cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
        }
    )
    encap: dict[str, object] = {"content_type": content_type}
    if not detached:
        encap["content"] = core.ParsableOctetString(content)
    sd = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": encap,
            "certificates": [signer_cert],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump())


def sign_chuid(tbs: bytes, signer: Certificate, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """The CHUID issuer asymmetric signature (tag 3E) over the CHUID's signed content."""
    return signed_data(
        content_type=oids.CONTENT_CHUID, content=tbs, detached=True, signer=signer, key=key
    )


def sign_security_object(
    groups: dict[int, bytes], signer: Certificate, key: CertificateIssuerPrivateKeyTypes
) -> bytes:
    """The security object's SignedData: SHA-256 of each data group, by group number."""
    lds = LdsSecurityObject(
        {
            "version": 0,
            "hash_algorithm": {"algorithm": "sha256"},
            "data_group_hash_values": [
                {"data_group_number": n, "data_group_hash_value": hashlib.sha256(v).digest()}
                for n, v in sorted(groups.items())
            ],
        }
    )
    return signed_data(
        content_type=oids.CONTENT_LDS_SECURITY_OBJECT,
        content=bytes(lds.dump()),
        detached=False,
        signer=signer,
        key=key,
    )
