"""Is this card what it says it is? The checks an enrollment station makes before binding.

In order, each refusal naming exactly what failed: the CHUID parses, its issuer signature
verifies and its signer validates for PIV content signing, it has not expired; the 9E and
9A certificates validate (path, policy, usage, expiry, revocation) for card and PIV
authentication; both name the CHUID's FASC-N and card UUID; the card signed the station's
challenge with 9E (and with 9A when the holder entered the PIN).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from accessd.authn.errors import AuthnError
from accessd.authn.proofs import Authenticator
from accessd.enrollment.errors import CardRefused
from accessd.enrollment.reading import STATION, CardReading
from accessd.validation.chuid import verify_chuid_signature
from accessd.validation.errors import ValidationError
from accessd.validation.purpose import CARD_AUTH, CONTENT_SIGNING, PIV_AUTH, Purpose
from accessd.validation.result import ValidatedCertificate
from drivers.errors import MalformedData
from drivers.piv.chuid import Chuid
from drivers.piv.fascn import Fascn
from policies.vocabulary import Mechanism

_SLOT_PURPOSE: dict[str, Purpose] = {"9a": PIV_AUTH, "9e": CARD_AUTH}
_SLOT_NAMES = {"9a": "PIV Authentication (9A)", "9e": "Card Authentication (9E)"}


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
        lines.append("proven       " + ", ".join(sorted(m.value for m in self.proven)))
        return lines


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


async def inspect(reading: CardReading, authn: Authenticator, *, today: date) -> CardIdentity:
    """Every check, or CardRefused with the first reason found."""
    try:
        chuid = Chuid.decode(reading.chuid)
    except MalformedData as exc:
        raise CardRefused(f"the CHUID does not parse: {exc}", code="chuid_malformed") from exc
    try:
        signer = verify_chuid_signature(chuid)
        signer_ok = await authn.validator.validate(
            signer.public_bytes(Encoding.DER), CONTENT_SIGNING
        )
    except ValidationError as exc:
        raise CardRefused(f"CHUID: {exc.detail}", code=_code(exc)) from exc
    if chuid.expires < today:
        raise CardRefused(f"the card expired on {chuid.expires.isoformat()}", code="expired")

    validated: dict[str, ValidatedCertificate] = {}
    for slot, purpose in _SLOT_PURPOSE.items():
        der = reading.certificates.get(slot)
        if der is None:
            raise CardRefused(
                f"the card has no {_SLOT_NAMES[slot]} certificate", code="certificate_missing"
            )
        try:
            validated[slot] = await authn.validator.validate(der, purpose)
        except ValidationError as exc:
            raise CardRefused(
                f"{_SLOT_NAMES[slot]} certificate: {exc.detail}", code=_code(exc)
            ) from exc
        cert = validated[slot]
        if cert.fascn is None or cert.fascn != chuid.fascn:
            raise CardRefused(
                f"the {_SLOT_NAMES[slot]} certificate names another FASC-N than the CHUID",
                code="identifier_mismatch",
            )
        if cert.card_uuid is not None and cert.card_uuid != chuid.card_uuid:
            raise CardRefused(
                f"the {_SLOT_NAMES[slot]} certificate names another card UUID than the CHUID",
                code="identifier_mismatch",
            )

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
    )


def _sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _code(exc: ValidationError | AuthnError) -> str:
    return str(exc.code)
