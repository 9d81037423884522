"""The CHUID issuer signature (SP 800-73-4): CMS SignedData over the CHUID, content detached.

`verify_chuid_signature` checks the CMS alone (synchronous, no network); `validate_chuid`
adds validation of the signer certificate for PIV content signing.
"""

from __future__ import annotations

import hashlib
import hmac

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from accessd.validation.errors import ValidationError
from accessd.validation.purpose import CONTENT_SIGNING
from accessd.validation.result import ValidatedCertificate
from accessd.validation.validator import CertificateValidator
from drivers.piv import oids
from drivers.piv.chuid import Chuid

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _refuse(why: str) -> ValidationError:
    return ValidationError("chuid_signature", f"CHUID signature refused: {why}")


def verify_chuid_signature(chuid: Chuid) -> x509.Certificate:
    """The signer certificate of a CHUID whose CMS signature verifies over `chuid.tbs`.

    Raises `ValidationError` with code ``chuid_signature`` for anything else: not a
    SignedData, wrong eContentType, attached content, a digest that does not match the
    CHUID, a signature that does not verify, or no signer certificate in the CMS.
    """
    try:
        info = cms.ContentInfo.load(chuid.signature)
        if info["content_type"].native != "signed_data":
            raise _refuse("the 3E element is not CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != oids.CONTENT_CHUID:
            raise _refuse(f"eContentType is {encap['content_type'].dotted}, not id-PIV-CHUID")
        if encap["content"].native is not None:
            raise _refuse("the content is attached; a CHUID signature is detached")
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise _refuse(f"{len(signer_infos)} signer infos, expected one")
        signer_info = signer_infos[0]
        digest_name = signer_info["digest_algorithm"]["algorithm"].native
        hash_type = _HASHES.get(digest_name)
        if hash_type is None:
            raise _refuse(f"digest algorithm {digest_name} is not allowed")
        signer = _signer_certificate(signed, signer_info)
        attrs = signer_info["signed_attrs"]
        if not attrs:
            raise _refuse("no signed attributes")
        values = {a["type"].native: a["values"] for a in attrs}
        if values.get("content_type") is None or values["content_type"][0].dotted != (
            oids.CONTENT_CHUID
        ):
            raise _refuse("the signed content-type attribute is not id-PIV-CHUID")
        if values.get("message_digest") is None:
            raise _refuse("no message-digest attribute")
        digest = hashlib.new(digest_name, chuid.tbs).digest()
        if not hmac.compare_digest(values["message_digest"][0].native, digest):
            raise _refuse("the message digest does not match the CHUID content")
        # The signature covers the attributes DER-encoded as a SET, not as [0].
        signed_bytes = attrs.untag().dump()
        signature = signer_info["signature"].native
        algorithm = signer_info["signature_algorithm"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _refuse(f"the CMS does not parse ({exc})") from exc
    _verify(signer, algorithm, signature, signed_bytes, hash_type())
    return signer


async def validate_chuid(chuid: Chuid, validator: CertificateValidator) -> ValidatedCertificate:
    """Verifies the CHUID signature, then validates its signer for PIV content signing."""
    signer = verify_chuid_signature(chuid)
    return await validator.validate(signer.public_bytes(Encoding.DER), CONTENT_SIGNING)


def _signer_certificate(signed: cms.SignedData, signer_info: cms.SignerInfo) -> x509.Certificate:
    sid = signer_info["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            match = (
                cert.issuer == sid.chosen["issuer"]
                and cert.serial_number == sid.chosen["serial_number"].native
            )
        else:
            match = cert.key_identifier == sid.chosen.native
        if match:
            return x509.load_der_x509_certificate(cert.dump())
    raise _refuse("the signer certificate is not in the CMS")


def _verify(
    signer: x509.Certificate,
    algorithm: cms.SignedDigestAlgorithm,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm,
) -> None:
    key = signer.public_key()
    kind = algorithm.signature_algo
    try:
        if isinstance(key, rsa.RSAPublicKey) and kind == "rsassa_pkcs1v15":
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, rsa.RSAPublicKey) and kind == "rsassa_pss":
            pss = padding.PSS(padding.MGF1(hash_algorithm), padding.PSS.AUTO)
            key.verify(signature, data, pss, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and kind == "ecdsa":
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            raise _refuse(f"signature algorithm {kind} does not fit the signer's key")
    except InvalidSignature as exc:
        raise _refuse("the signature does not verify with the signer's key") from exc
