"""Enrollment stations: a PIV card read at a station is validated and bound to a person."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends

from accessd.api.deps import SessionDep, StateDep, require
from accessd.api.routes.credentials import public as credential_public
from accessd.api.schemas.enrollment import (
    CardIdentityPublic,
    CardReadingIn,
    CertificateCheck,
    EnrollmentPublic,
    EnrollmentRequest,
)
from accessd.auth.permissions import Permission
from accessd.authn.proofs import PkiProof
from accessd.decisions.requests import decode_b64
from accessd.enrollment.inspection import CardIdentity, inspect
from accessd.enrollment.reading import OBJECT_IDS, CardReading
from accessd.enrollment.registration import register, registered_to
from accessd.errors import InvalidInput
from accessd.services.actors import Actor
from policies.vocabulary import Mechanism

router = APIRouter(prefix="/v1/enrollments", tags=["enrollment"])


def reading_from(card: CardReadingIn) -> CardReading:
    certificates: dict[str, bytes] = {
        s: decode_b64(v, f"card.certificates.{s}") for s, v in card.certificates.items()
    }
    proofs = []
    for i, p in enumerate(card.proofs):
        slot = "9e" if p.mechanism == "pki_cak" else "9a"
        if slot not in certificates:
            raise InvalidInput(
                f"card.proofs[{i}] is a {p.mechanism} answer but no {slot} certificate came",
                code="certificate_missing",
            )
        proofs.append(
            PkiProof(
                Mechanism(p.mechanism),
                decode_b64(p.challenge, f"card.proofs[{i}].challenge"),
                certificates[slot],
                decode_b64(p.signature, f"card.proofs[{i}].signature"),
            )
        )

    def optional(value: str | None, name: str) -> bytes | None:
        return None if value is None else decode_b64(value, f"card.{name}")

    return CardReading(
        decode_b64(card.chuid, "card.chuid"),
        certificates,
        tuple(proofs),
        security_object=optional(card.security_object, "security_object"),
        discovery=optional(card.discovery, "discovery"),
        ccc=optional(card.ccc, "ccc"),
        facial_image=optional(card.facial_image, "facial_image"),
        fingerprints=optional(card.fingerprints, "fingerprints"),
        printed_information=optional(card.printed_information, "printed_information"),
        absent=frozenset(OBJECT_IDS[name] for name in card.absent),
    )


def identity_public(identity: CardIdentity) -> CardIdentityPublic:
    return CardIdentityPublic(
        holder=identity.holder,
        fasc_n=identity.fascn.redacted(),
        card_uuid=identity.card_uuid,
        expires=identity.expires,
        valid_until=identity.valid_until,
        issuer=identity.issuer,
        chuid_signer=identity.chuid_signer,
        proven=sorted(m.value for m in identity.proven),
        certificates=[
            CertificateCheck(
                slot=slot,
                subject=c.subject,
                issuer=c.issuer,
                not_after=c.not_after.date(),
                sha256=c.sha256,
                revocation_source=c.revocation_source,
            )
            for slot, c in sorted(identity.certificates.items())
        ],
        checked=list(identity.checked),
    )


@router.post("", response_model=EnrollmentPublic)
async def enroll(
    body: EnrollmentRequest,
    session: SessionDep,
    state: StateDep,
    actor: Annotated[Actor, Depends(require(Permission.CREDENTIALS_ENROLL))],
) -> EnrollmentPublic:
    """Validates the card (CHUID signature, certificates with revocation, possession of
    its keys) and binds it to the person's credential awaiting a card. A refused card is a
    422 whose `code` says why: expired, revoked, untrusted, chuid_signature, …"""
    identity = await inspect(
        reading_from(body.card),
        state.authn,
        today=date.today(),
        require_security_object=state.settings.require_security_object,
    )
    if body.dry_run:
        bound = await registered_to(session, identity)
        return EnrollmentPublic(
            identity=identity_public(identity),
            credential=credential_public(bound) if bound is not None else None,
            dry_run=True,
        )
    cred = await register(
        session, actor, identity, person_id=body.person_id, credential_id=body.credential_id
    )
    await session.commit()
    return EnrollmentPublic(
        identity=identity_public(identity), credential=credential_public(cred), dry_run=False
    )
