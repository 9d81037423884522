"""Is this card what it says it is? The checks an enrollment station makes before binding.

In order, each refusal naming exactly what failed in a stable code: the CHUID's issuer
signature verifies over the CHUID as read, the CHUID parses, its signer validates for PIV
(or PIV-I) content signing and stays valid until the CHUID expires, the CHUID has not
expired; the 9A and 9E certificates name the CHUID's FASC-N or card UUID and their subject
key identifiers match their keys, and then validate (path, policy, usage, expiry,
revocation) for PIV and card authentication; the security object (required unless told
otherwise) and the facial image and fingerprint records verify with a valid content
signer, the records are in their validity period until the CHUID expires and name the
CHUID's card; the security object's hash of every object read matches; no certificate
read outlives the CHUID; the card signed the station's challenge with 9E (and with 9A
when the holder entered the PIN).

Expiry comes before the checks of how long things last: an expired signer or CHUID is
refused as expired, not as ending too early. Each object's own signature comes before the
security object's hashes, so a tampered record is refused for its signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from accessd.authn.errors import AuthnError
from accessd.authn.proofs import Authenticator
from accessd.enrollment.errors import CardRefused
from accessd.enrollment.reading import STATION, CardReading
from accessd.validation import consistency
from accessd.validation.biometrics import Kind, check_biometric, verify_biometric
from accessd.validation.chuid import verify_signed_chuid_content
from accessd.validation.errors import ValidationError
from accessd.validation.purpose import (
    CARD_AUTH,
    CONTENT_SIGNING,
    CONTENT_SIGNING_PIV_I,
    PIV_AUTH,
    Purpose,
)
from accessd.validation.result import ValidatedCertificate
from accessd.validation.security_object import check_data_group_hashes, verify_security_object
from drivers.errors import MalformedData
from drivers.piv import tlv
from drivers.piv.chuid import CONTAINER as CHUID_CONTAINER
from drivers.piv.chuid import Chuid, split_signed
from drivers.piv.fascn import Fascn
from policies.vocabulary import Mechanism

_SLOT_PURPOSE: dict[str, Purpose] = {"9a": PIV_AUTH, "9e": CARD_AUTH}
_SLOT_NAMES = {
    "9a": "PIV Authentication (9A)",
    "9c": "Digital Signature (9C)",
    "9d": "Key Management (9D)",
    "9e": "Card Authentication (9E)",
}


@dataclass(frozen=True, slots=True)
class CardIdentity:
    """Who the card says it is, after every check passed."""

    fascn: Fascn
    card_uuid: str
    expires: date
    holder: str  # the 9A certificate's common name
    issuer: str  # the 9A certificate's issuer
    certificates: dict[str, ValidatedCertificate]  # "9a", "9e"
    chuid_signer: str
    proven: frozenset[Mechanism]  # PKI-CAK, and PKI-AUTH when the PIN was entered
    other_certificates: dict[str, str]  # 9C/9D: slot → SHA-256, bound but not validated
    checked: tuple[str, ...] = ()  # the signed objects checked besides the CHUID, in words

    @property
    def valid_until(self) -> date:
        """The last day the card can be used: its CHUID expiry or a certificate's end."""
        ends = [c.not_after.date() for c in self.certificates.values()]
        return min([self.expires, *ends])

    def describe(self) -> list[str]:
        """Lines for the station's screen (the FASC-N in its log-safe form)."""
        f = self.fascn
        lines = [
            f"holder       {self.holder}",
            f"FASC-N       agency {f.agency_code} system {f.system_code} credential "
            f"**{f.credential_number[-4:]} series {f.credential_series} issue "
            f"{f.individual_credential_issue}",
            f"card UUID    {self.card_uuid}",
            f"expires      {self.expires.isoformat()}  (usable until {self.valid_until})",
            f"issuer       {self.issuer}",
            f"CHUID signer {self.chuid_signer}",
        ]
        for slot, cert in sorted(self.certificates.items()):
            lines.append(
                f"{slot.upper()}           valid to {cert.not_after:%Y-%m-%d}, "
                f"revocation checked by {cert.revocation_source}, sha256 {cert.sha256[:16]}…"
            )
        lines.extend(f"checked      {line}" for line in self.checked)
        lines.append("proven       " + ", ".join(sorted(m.value for m in self.proven)))
        return lines


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


async def inspect(
    reading: CardReading,
    authn: Authenticator,
    *,
    today: date,
    require_security_object: bool = True,
    content_signing: Purpose = CONTENT_SIGNING,
    content_signing_piv_i: Purpose = CONTENT_SIGNING_PIV_I,
) -> CardIdentity:
    """Every check, or CardRefused with the first reason found (see the module docstring).

    ``require_security_object`` refuses a card without one (the default, as FIPS 201-3
    makes it mandatory); the two purposes are what a content signer is validated for, a
    PIV-I issuer's signer (PIV-I content-signing EKU) for the second.
    """
    content = _chuid_content(reading.chuid)
    try:
        signed = split_signed(content)
    except MalformedData as exc:
        raise CardRefused(f"the CHUID does not parse: {exc}", code="chuid_malformed") from exc
    try:
        verified = verify_signed_chuid_content(signed)
    except ValidationError as exc:
        raise CardRefused(f"CHUID: {exc.detail}", code=_code(exc)) from exc
    signer = verified.signer
    try:
        chuid = Chuid.decode_content(content)
    except MalformedData as exc:
        raise CardRefused(f"the CHUID does not parse: {exc}", code="chuid_malformed") from exc
    purposes = {"piv": content_signing, "piv_i": content_signing_piv_i}
    signer_ok = await _validate_signer(authn, signer, "CHUID", purposes)
    _check(consistency.check_signer_covers_chuid, signer, chuid, verified.signing_time)
    if chuid.expires < today:
        raise CardRefused(f"the card expired on {chuid.expires.isoformat()}", code="expired")

    for slot in _SLOT_PURPOSE:
        if slot not in reading.certificates:
            raise CardRefused(
                f"the card has no {_SLOT_NAMES[slot]} certificate", code="certificate_missing"
            )
    # The card's agreement with itself before any path is built: a certificate naming
    # another card, or whose key pair was swapped, is refused for that, whatever else
    # (revocation data, an unreachable repository) its validation would run into.
    names = {slot: _SLOT_NAMES.get(slot, slot.upper()) for slot in reading.certificates}
    certificates = {
        slot: _load(der, names[slot]) for slot, der in sorted(reading.certificates.items())
    }
    for slot in _SLOT_PURPOSE:
        _check(consistency.check_identifiers, names[slot], certificates[slot], chuid)
        _check(consistency.check_subject_key_identifier, names[slot], certificates[slot])
    validated: dict[str, ValidatedCertificate] = {}
    for slot, purpose in _SLOT_PURPOSE.items():
        try:
            validated[slot] = await authn.validator.validate(reading.certificates[slot], purpose)
        except ValidationError as exc:
            raise CardRefused(
                f"{_SLOT_NAMES[slot]} certificate: {exc.detail}", code=_code(exc)
            ) from exc

    checked = await _check_signed_objects(
        reading, authn, chuid, signer, purposes, today=today, required=require_security_object
    )
    # Lifetimes last: a card whose records or certificates name another card is refused
    # for that, even when one of its certificates also runs past the CHUID.
    for slot, cert in certificates.items():
        _check(consistency.check_within_chuid, names[slot], cert, chuid)

    proven: set[Mechanism] = set()
    for proof in reading.proofs:
        slot = "9e" if proof.mechanism is Mechanism.PKI_CAK else "9a"
        if proof.certificate != reading.certificates.get(slot):
            raise CardRefused(
                f"the {proof.mechanism.value} proof is not by the card's {slot.upper()} key",
                code="proof_mismatch",
            )
        try:
            await authn.verify(STATION, proof)
        except (AuthnError, ValidationError) as exc:
            raise CardRefused(
                f"the card's {proof.mechanism.value} answer was refused: {exc.detail}",
                code=_code(exc),
            ) from exc
        proven.add(proof.mechanism)
    if Mechanism.PKI_CAK not in proven:
        raise CardRefused(
            "the card did not prove it holds its card-authentication key (PKI-CAK)",
            code="possession_unproven",
        )
    others = {
        slot: _sha256(der) for slot, der in reading.certificates.items() if slot not in validated
    }
    holder = validated["9a"].certificate
    return CardIdentity(
        fascn=chuid.fascn,
        card_uuid=chuid.card_uuid,
        expires=chuid.expires,
        holder=_common_name(holder.subject),
        issuer=holder.issuer.rfc4514_string(),
        certificates=validated,
        chuid_signer=signer_ok.subject,
        proven=frozenset(proven),
        other_certificates=others,
        checked=checked,
    )


async def _check_signed_objects(
    reading: CardReading,
    authn: Authenticator,
    chuid: Chuid,
    chuid_signer: x509.Certificate,
    purposes: dict[str, Purpose],
    *,
    today: date,
    required: bool,
) -> tuple[str, ...]:
    """The security object and the biometric records: each object's own signature and
    signer, then (last, so a tampered record is refused for its signature) the security
    object's hashes of every object read. Returns what was checked, in words."""
    checked: list[str] = []
    known = (chuid_signer,)
    try:
        security = verify_security_object(
            reading.security_object, required=required, known_signers=known
        )
    except ValidationError as exc:
        raise CardRefused(exc.detail, code=_code(exc)) from exc
    if security is not None:
        await _validate_signer(authn, security.signer, "security object", purposes)
    records: tuple[tuple[Kind, bytes | None], ...] = (
        ("facial_image", reading.facial_image),
        ("fingerprints", reading.fingerprints),
    )
    for kind, content in records:
        if content is None:
            continue
        try:
            bio = verify_biometric(kind, content, known_signers=known)
            check_biometric(bio, chuid, today=today)
        except ValidationError as exc:
            raise CardRefused(exc.detail, code=_code(exc)) from exc
        await _validate_signer(authn, bio.signer, bio.name, purposes)
        checked.append(f"{bio.name}: signature, signer, validity and card identifiers")
    if security is not None:
        try:
            hashes = check_data_group_hashes(security, reading.objects_read(), reading.absent)
        except ValidationError as exc:
            raise CardRefused(exc.detail, code=_code(exc)) from exc
        groups = ", ".join(str(g) for g in hashes.matched) or "none"
        checked.insert(0, f"security object: signature, signer; data groups {groups} match")
    return tuple(checked)


async def _validate_signer(
    authn: Authenticator, signer: x509.Certificate, what: str, purposes: dict[str, Purpose]
) -> ValidatedCertificate:
    try:
        purpose = consistency.content_signing_purpose(
            signer, piv=purposes["piv"], piv_i=purposes["piv_i"]
        )
        return await authn.validator.validate(signer.public_bytes(Encoding.DER), purpose)
    except ValidationError as exc:
        raise CardRefused(f"{what} signer: {exc.detail}", code=_code(exc)) from exc


def _check(check: Callable[..., None], *args: object) -> None:
    try:
        check(*args)
    except ValidationError as exc:
        raise CardRefused(exc.detail, code=_code(exc)) from exc


def _chuid_content(data: bytes) -> bytes:
    try:
        outer = tlv.decode_one(data)
    except MalformedData as exc:
        raise CardRefused(f"the CHUID does not parse: {exc}", code="chuid_malformed") from exc
    if outer.tag != CHUID_CONTAINER:
        raise CardRefused(
            f"the CHUID does not parse: expected container tag 53, got {outer.tag:X}",
            code="chuid_malformed",
        )
    return outer.value


def _load(der: bytes, name: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CardRefused(f"the {name} certificate is not DER X.509", code="malformed") from exc


def _sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _code(exc: ValidationError | AuthnError) -> str:
    return str(exc.code)
