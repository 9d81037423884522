"""Binding an inspected PIV card to the person's credential that awaits one.

The card's FASC-N, card UUID and certificate fingerprints go onto a credential a sponsor
requested (the station does not sponsor: separation of duties); a requested credential
moves on to enrolled. Validity is cut to the card's own end. A card already bound to any
credential is refused, naming whose it is.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.enrollment.inspection import CardIdentity
from accessd.errors import Conflict, InvalidInput, LifecycleRefused
from accessd.models import Credential, CredentialCertificate, Person
from accessd.services import audit
from accessd.services import credentials as credential_service
from accessd.services.actors import Actor
from accessd.services.records import get_or_404
from policies import lifecycle as lc

_PIV_KINDS = frozenset({lc.CredentialKind.PIV, lc.CredentialKind.PIV_I})
_AWAITING = frozenset(
    {lc.CredentialState.REQUESTED, lc.CredentialState.ENROLLED, lc.CredentialState.ADJUDICATED}
)


async def registered_to(session: AsyncSession, identity: CardIdentity) -> Credential | None:
    """The credential this card is bound to already, if any."""
    fingerprints = [c.sha256 for c in identity.certificates.values()]
    found = await session.scalar(
        select(Credential)
        .outerjoin(CredentialCertificate)
        .where(
            or_(
                Credential.fasc_n == identity.fascn.hex(),
                Credential.card_uuid == identity.card_uuid,
                CredentialCertificate.sha256.in_(fingerprints),
            )
        )
        .limit(1)
    )
    return found


async def _target(session: AsyncSession, person_id: int, credential_id: int | None) -> Credential:
    if credential_id is not None:
        cred = await get_or_404(session, Credential, credential_id)
        if cred.person_id != person_id:
            raise InvalidInput(
                f"credential {credential_id} belongs to person {cred.person_id}, not {person_id}",
                code="credential_of_another_person",
            )
        return cred
    rows = await session.scalars(
        select(Credential)
        .where(
            Credential.person_id == person_id,
            Credential.kind.in_(list(_PIV_KINDS)),
            Credential.state.in_(list(_AWAITING)),
            Credential.fasc_n.is_(None),
        )
        .order_by(Credential.id)
    )
    waiting = list(rows.all())
    if not waiting:
        raise LifecycleRefused(
            f"person {person_id} has no PIV credential awaiting a card: a sponsor must "
            "request one first",
            code="no_pending_credential",
        )
    if len(waiting) > 1:
        ids = ", ".join(str(c.id) for c in waiting)
        raise InvalidInput(
            f"person {person_id} has several credentials awaiting a card ({ids}): name one",
            code="ambiguous_credential",
        )
    return waiting[0]


async def register(
    session: AsyncSession,
    actor: Actor,
    identity: CardIdentity,
    *,
    person_id: int,
    credential_id: int | None = None,
    today: date | None = None,
) -> Credential:
    """Binds the card to the person's waiting credential; the caller commits."""
    await get_or_404(session, Person, person_id)
    bound = await registered_to(session, identity)
    if bound is not None:
        raise Conflict(
            f"this card is already registered as credential {bound.id} of person {bound.person_id}",
            code="card_registered",
        )
    cred = await _target(session, person_id, credential_id)
    if cred.kind not in _PIV_KINDS:
        raise InvalidInput(
            f"credential {cred.id} is a {cred.kind}; a PIV card binds only to piv or piv_i",
            code="kind_mismatch",
        )
    if cred.state not in _AWAITING:
        raise LifecycleRefused(
            f"credential {cred.id} is {cred.state}; cards bind before issuance",
            code="identifiers_frozen",
        )
    certificates = [{"slot": slot, "sha256": c.sha256} for slot, c in identity.certificates.items()]
    certificates += [{"slot": s, "sha256": h} for s, h in identity.other_certificates.items()]
    changes: dict[str, object] = {
        "fasc_n": identity.fascn.hex(),
        "card_uuid": identity.card_uuid,
        "certificates": certificates,
    }
    if identity.valid_until < cred.valid_until:
        changes["valid_until"] = identity.valid_until
    cred = await credential_service.update_credential(
        session, actor, cred.id, changes, expected_version=cred.version
    )
    if cred.state == lc.CredentialState.REQUESTED:
        cred = await credential_service.transition(
            session,
            actor,
            cred.id,
            lc.Action.ENROLL,
            reason="PIV card read and validated at an enrollment station",
            today=today,
        )
    await audit.record(
        session,
        actor=actor.label,
        action="credential.card_enrolled",
        entity="credential",
        entity_id=cred.id,
        data={
            "person_id": person_id,
            "fasc_n": identity.fascn.redacted(),
            "card_uuid": identity.card_uuid,
            "proven": sorted(m.value for m in identity.proven),
            "certificates": {
                slot: {"sha256": c.sha256, "revocation": c.revocation_source}
                for slot, c in identity.certificates.items()
            },
            "card_expires": identity.expires,
        },
    )
    return cred
