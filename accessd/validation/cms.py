"""CMS SignedData as PIV content signers make it (RFC 5652, SP 800-73-4, SP 800-76-2).

One verifier for every signed object on a card: the CHUID and the biometric records
(content detached), the security object (content attached). It checks the structure, the
eContentType, the signed content-type and message-digest attributes, and the signature
with the signer's key, and finds the signer certificate in the CMS or, where SP 800-73-4
lets the issuer leave it out (same signer as the CHUID), among the certificates the caller
already holds. It does not validate the signer: callers do, for the purpose they need.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from accessd.validation.errors import Code, ValidationError

#: The signingTime signed attribute (RFC 5652 11.3).
SIGNING_TIME = "1.2.840.113549.1.9.5"

_Refuse = Callable[[str], ValidationError]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


@dataclass(frozen=True, slots=True)
class SignedContent:
    """A SignedData whose signature verified: its signer, content and signed attributes.

    `attributes` maps each signed attribute's dotted OID to the DER of its values.
    """

    signer: x509.Certificate
    content_type: str
    content: bytes  # the encapsulated content, or the detached content checked against it
    attributes: dict[str, tuple[bytes, ...]] = field(default_factory=dict)

    @property
    def signing_time(self) -> datetime | None:
        """The signingTime attribute (RFC 5652 11.3), when the signer put one and it parses."""
        values = self.attributes.get(SIGNING_TIME)
        if not values:
            return None
        try:
            when = cms.Time.load(values[0]).native
        except (ValueError, TypeError):
            return None
        return when if isinstance(when, datetime) else None


def verify_signed_data(
    data: bytes,
    *,
    content_types: Collection[str],
    detached: bytes | None,
    known_signers: Sequence[x509.Certificate] = (),
    code: Code,
    what: str,
) -> SignedContent:
    """The verified SignedData in ``data``, or `ValidationError` with ``code``.

    ``detached`` is the content the signature must cover when it is not encapsulated (the
    CMS must then carry none); with None the content must be encapsulated. ``what`` names
    the object in the refusal ("CHUID signature", "facial image signature").
    """

    def refuse(why: str) -> ValidationError:
        return ValidationError(code, f"{what} refused: {why}")

    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise refuse("not a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content_type = encap["content_type"].dotted
        if content_type not in content_types:
            expected = " or ".join(sorted(content_types))
            raise refuse(f"eContentType {content_type} is not {expected}")
        attached = encap["content"]
        if detached is None:
            if attached.native is None:
                raise refuse("no encapsulated content")
            # The octets as they were signed, chunks of a constructed encoding joined.
            content = bytes(attached)
        else:
            if attached.native is not None:
                raise refuse("the content is attached; this signature is detached")
            content = detached
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise refuse(f"{len(signer_infos)} signer infos, expected one")
        signer_info = signer_infos[0]
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        hash_type = _HASHES.get(digest_name)
        if hash_type is None:
            raise refuse(f"digest algorithm {digest_name} is not allowed")
        signer = _signer_certificate(signed, signer_info, known_signers, refuse)
        attrs = signer_info["signed_attrs"]
        if not attrs:
            raise refuse("no signed attributes")
        values = {a["type"].dotted: tuple(v.dump() for v in a["values"]) for a in attrs}
        by_name = {a["type"].dotted: a["values"] for a in attrs}
        declared = by_name.get(_CONTENT_TYPE)
        if declared is None or declared[0].dotted != content_type:
            raise refuse("the signed content-type attribute is not the eContentType")
        digest_attr = by_name.get(_MESSAGE_DIGEST)
        if digest_attr is None:
            raise refuse("no message-digest attribute")
        digest = hashlib.new(digest_name, content).digest()
        if not hmac.compare_digest(digest_attr[0].native, digest):
            raise refuse("the message digest does not match the signed content")
        # The signature covers the attributes DER-encoded as a SET, not as [0].
        signed_bytes = attrs.untag().dump()
        signature = signer_info["signature"].native
        algorithm = signer_info["signature_algorithm"].signature_algo
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise refuse(f"the CMS does not parse ({exc})") from exc
    _verify(signer, algorithm, signature, signed_bytes, hash_type(), refuse)
    return SignedContent(signer, content_type, content, values)


def _signer_certificate(
    signed: cms.SignedData,
    signer_info: cms.SignerInfo,
    known: Sequence[x509.Certificate],
    refuse: _Refuse,
) -> x509.Certificate:
    sid = signer_info["sid"]
    carried = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
    others = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in known]
    for cert in [*carried, *others]:
        if sid.name == "issuer_and_serial_number":
            match = (
                cert.issuer == sid.chosen["issuer"]
                and cert.serial_number == sid.chosen["serial_number"].native
            )
        else:
            match = cert.key_identifier == sid.chosen.native
        if match:
            return x509.load_der_x509_certificate(cert.dump())
    raise refuse("the signer certificate is neither in the CMS nor among the card's signers")


def _verify(
    signer: x509.Certificate,
    kind: str,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm,
    refuse: _Refuse,
) -> None:
    try:
        key = signer.public_key()
        if isinstance(key, rsa.RSAPublicKey) and kind == "rsassa_pkcs1v15":
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, rsa.RSAPublicKey) and kind == "rsassa_pss":
            pss = padding.PSS(padding.MGF1(hash_algorithm), padding.PSS.AUTO)
            key.verify(signature, data, pss, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and kind == "ecdsa":
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            raise refuse(f"signature algorithm {kind} does not fit the signer's key")
    except InvalidSignature as exc:
        raise refuse("the signature does not verify with the signer's key") from exc
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise refuse(f"the signer's key cannot verify it ({exc})") from exc


def signer_der(content: SignedContent) -> bytes:
    """The signer certificate as DER, for the validator."""
    return content.signer.public_bytes(Encoding.DER)
