"""From what a reader sent to the engine's AccessRequest: proofs verified on the way.

Shared by every transport (HTTP, MQTT panels, OSDP edge): a proof that fails becomes the
request's `authn_failure`, so the engine makes it a stored denial saying why, the same for
all of them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime

from accessd.authn.proofs import (
    PROVABLE,
    UNPROVEN_CLAIMS,
    Authenticated,
    Authenticator,
    BioProof,
    PinProof,
    PkiProof,
    certificate_sha256,
)
from accessd.errors import AccessdError, InvalidInput
from policies.decision import AccessRequest
from policies.vocabulary import Mechanism


def decode_b64(text: str, what: str) -> bytes:
    """Standard base64 (the schemas have checked its alphabet already); InvalidInput else."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{what} is not base64", code="bad_base64") from exc


def proofs_from(
    proof: tuple[str, str, str, str] | None, bio: tuple[bool, int, str] | None
) -> tuple[PkiProof | None, BioProof | None]:
    """The proofs as (mechanism, challenge, certificate, signature) and (matched, score,
    signature), base64 fields decoded; InvalidInput for bad base64."""
    if proof is None:
        return None, None
    mechanism, challenge, certificate, signature = proof
    pki = PkiProof(
        Mechanism(mechanism),
        decode_b64(challenge, "proof.challenge"),
        decode_b64(certificate, "proof.certificate"),
        decode_b64(signature, "proof.signature"),
    )
    if bio is None:
        return pki, None
    matched, score, bio_signature = bio
    return pki, BioProof(matched, score, decode_b64(bio_signature, "bio.signature"))


def pin_from(signature: str | None) -> PinProof | None:
    """A signed PIN claim from its base64 signature; InvalidInput for bad base64."""
    return None if signature is None else PinProof(decode_b64(signature, "pin.signature"))


def normalised(kind: str, value: str) -> str:
    """Identifiers compare in lower case, badge numbers as printed."""
    return value if kind == "badge_number" else value.lower()


async def access_request(
    authn: Authenticator,
    *,
    reader_id: int,
    at: datetime,
    credential: tuple[str, str] | None,
    evidence: Iterable[Mechanism],
    proof: PkiProof | None = None,
    bio: BioProof | None = None,
    pin: PinProof | None = None,
    require_proofs: bool = True,
) -> AccessRequest:
    """The request to decide; ``at`` must be aware.

    ``require_proofs`` (settings.require_card_proofs): the reader's word counts for
    nothing a card or a signed claim can prove, nor for a PIN or secure messaging; off,
    only a request with a proof has its provable claims taken from the proof alone."""
    proven = frozenset(evidence)
    kind, value = ("", "") if credential is None else (credential[0], normalised(*credential))
    failure = proven_by = None
    if require_proofs:
        proven -= UNPROVEN_CLAIMS
    elif proof is not None:
        proven -= PROVABLE
    if proof is not None:
        try:
            authenticated = await authn.verify(reader_id, proof, bio, pin)
        except AccessdError as exc:  # AuthnError or ValidationError: both say why
            failure = f"{exc.code}: {exc.detail}"
            kind, value = "cert_sha256", certificate_sha256(proof.certificate)
        else:
            proven |= authenticated.mechanisms
            failure = mismatch(kind, value, authenticated)
            kind, value = "cert_sha256", authenticated.cert_sha256
            proven_by = _proven_by(authenticated)
    return AccessRequest(
        reader_id,
        at.astimezone(UTC),
        kind,
        value,
        proven,
        authn_failure=failure,
        authn_proven=proven_by,
    )


def _proven_by(auth: Authenticated) -> str:
    """The trail's words for a verified proof: which mechanisms, by which certificate, and
    which revocation source (CRL or OCSP) the certificate was really checked by."""
    cert = auth.certificate
    mechanisms = ", ".join(sorted(m.value for m in auth.mechanisms))
    return (
        f"{mechanisms} by {cert.purpose} certificate serial {cert.serial:x} "
        f"(revocation checked by {cert.revocation_source})"
    )


def mismatch(kind: str, value: str, auth: Authenticated) -> str | None:
    """Why the identifier the reader read disagrees with the proven certificate, if it does."""
    cert = auth.certificate
    if not kind:
        return None
    if kind == "cert_sha256" and value != cert.sha256:
        return "credential_mismatch: the certificate is not the one the reader identified"
    if kind == "fasc_n" and (cert.fascn is None or cert.fascn.hex() != value):
        return "credential_mismatch: the certificate carries another FASC-N"
    if kind == "card_uuid" and cert.card_uuid != value:
        return "credential_mismatch: the certificate carries another card UUID"
    if kind == "badge_number":
        return "credential_mismatch: a badge number cannot be bound to a certificate"
    return None
