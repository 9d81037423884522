"""Sponsoring credentials, moving them through the lifecycle, binding identifiers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import utcnow
from accessd.errors import Conflict, InvalidInput, LifecycleRefused, NotFound
from accessd.events import CredentialStateChanged, stage
from accessd.models import (
    Credential,
    CredentialCertificate,
    CredentialTransition,
    Person,
    SecurityRecord,
)
from accessd.models.enums import Affiliation, CredentialKind, Entity, PersonStatus
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404
from policies import lifecycle as lc

#: Identifiers can be bound only while the card is being prepared; a card in hand is what
#: it is (a changed card is a new credential).
_EDITABLE_STATES = frozenset(
    {lc.CredentialState.REQUESTED, lc.CredentialState.ENROLLED, lc.CredentialState.ADJUDICATED}
)


def kind_refusal(kind: CredentialKind, affiliation: Affiliation) -> str | None:
    if affiliation is Affiliation.VISITOR and kind is not CredentialKind.TEMPORARY:
        return "visitors receive temporary credentials only"
    if kind is CredentialKind.LAW_ENFORCEMENT and affiliation is not Affiliation.LAW_ENFORCEMENT:
        return "law-enforcement credentials are for law-enforcement officers only"
    return None


async def _unique_identifiers(
    session: AsyncSession, values: Mapping[str, Any], exclude_id: int | None = None
) -> None:
    conds = [
        getattr(Credential, k) == v
        for k, v in values.items()
        if k in ("fasc_n", "card_uuid", "badge_number") and v is not None
    ]
    if not conds:
        return
    stmt = select(Credential.id).where(or_(*conds))
    if exclude_id is not None:
        stmt = stmt.where(Credential.id != exclude_id)
    other = await session.scalar(stmt.limit(1))
    if other is not None:
        raise Conflict(
            f"an identifier is already bound to credential {other}", code="identifier_taken"
        )


async def _unique_certificates(
    session: AsyncSession, certs: Sequence[Mapping[str, str]], exclude_id: int | None
) -> None:
    digests = [c["sha256"] for c in certs]
    if len(set(digests)) != len(digests):
        raise InvalidInput("the same certificate is listed twice", code="duplicate_certificate")
    slots = [c["slot"] for c in certs]
    if len(set(slots)) != len(slots):
        raise InvalidInput("a key slot is listed twice", code="duplicate_slot")
    if not digests:
        return
    stmt = select(CredentialCertificate.credential_id).where(
        CredentialCertificate.sha256.in_(digests)
    )
    if exclude_id is not None:
        stmt = stmt.where(CredentialCertificate.credential_id != exclude_id)
    other = await session.scalar(stmt.limit(1))
    if other is not None:
        raise Conflict(
            f"a certificate is already bound to credential {other}", code="identifier_taken"
        )


async def sponsor(
    session: AsyncSession,
    actor: Actor,
    *,
    person_id: int,
    kind: CredentialKind,
    valid_from: date,
    valid_until: date,
    reason: str = "",
    identifiers: Mapping[str, Any] | None = None,
    certificates: Sequence[Mapping[str, str]] = (),
) -> Credential:
    """Requests a credential for a person: the first step of the lifecycle."""
    person = await get_or_404(session, Person, person_id)
    if person.status != PersonStatus.ACTIVE:
        raise LifecycleRefused("the person has separated", code="person_separated")
    if actor.person_id == person_id:
        raise LifecycleRefused(
            "an operator may not sponsor their own credential", code="self_dealing"
        )
    why = kind_refusal(kind, Affiliation(person.affiliation))
    if why:
        raise LifecycleRefused(why, code="kind_not_allowed")
    bad = lc.validity_refusal(kind, valid_from, valid_until)
    if bad:
        raise InvalidInput(bad.detail, code=bad.code)
    ids = dict(identifiers or {})
    await _unique_identifiers(session, ids)
    await _unique_certificates(session, certificates, None)
    cred = Credential(
        person_id=person_id,
        kind=kind,
        state=lc.CredentialState.REQUESTED,
        valid_from=valid_from,
        valid_until=valid_until,
        sponsor_id=actor.operator_id,
        certificates=[
            CredentialCertificate(slot=c["slot"], sha256=c["sha256"]) for c in certificates
        ],
        **ids,
    )
    session.add(cred)
    await session.flush()
    session.add(
        CredentialTransition(
            credential_id=cred.id,
            action="sponsor",
            from_state=None,
            to_state=lc.CredentialState.REQUESTED,
            actor_id=actor.operator_id,
            reason=reason,
        )
    )
    await audit.record(
        session,
        actor=actor.label,
        action="credential.sponsor",
        entity=Entity.CREDENTIAL,
        entity_id=cred.id,
        data={
            "person_id": person_id,
            "kind": kind,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "reason": reason,
            "identifiers": {k: _redact(k, v) for k, v in ids.items()},
            "certificates": [dict(c) for c in certificates],
        },
    )
    return cred


def _redact(name: str, value: Any) -> Any:
    """FASC-Ns never reach logs whole; the audit keeps enough to tell cards apart."""
    if name == "fasc_n" and isinstance(value, str) and len(value) > 8:
        return f"…{value[-8:]}"
    return value


_M = TypeVar("_M", Person, SecurityRecord, Credential)


async def _locked(session: AsyncSession, model: type[_M], key: int) -> _M:
    """Reads a row FOR NO KEY UPDATE (inserts that merely reference it need not wait),
    fresh from the database even if the session holds it already."""
    obj = await session.get(model, key, with_for_update={"key_share": True}, populate_existing=True)
    if obj is None:
        raise NotFound(f"{model.__name__.lower()} {key} does not exist")
    return obj


async def transition(
    session: AsyncSession,
    actor: Actor,
    credential_id: int,
    action: lc.Action,
    *,
    reason: str,
    expected_version: int | None = None,
    today: date | None = None,
) -> Credential:
    """Applies one lifecycle action, or raises LifecycleRefused saying why not."""
    # The holder's person and security rows are locked before the card, in the order that
    # separation, adjudication and vetting take them before suspending every card. So a
    # concurrent suspension either waits for this transition and then sees its result, or
    # this one waits and sees the suspension. Unlocked, PostgreSQL lets both commit: the
    # suspension's SELECT … FOR UPDATE skips a card whose pending change it cannot see yet.
    person_id = await session.scalar(
        select(Credential.person_id).where(Credential.id == credential_id)
    )
    if person_id is None:
        raise NotFound(f"credential {credential_id} does not exist")
    holder = await _locked(session, Person, person_id)
    record = await _locked(session, SecurityRecord, person_id)
    cred = await _locked(session, Credential, credential_id)
    check_version(cred, expected_version, required=False)
    facts = lc.CredentialFacts(
        kind=CredentialKind(cred.kind),
        state=lc.CredentialState(cred.state),
        holder_person_id=cred.person_id,
        valid_from=cred.valid_from,
        valid_until=cred.valid_until,
        sponsor_id=cred.sponsor_id,
        adjudicator_id=cred.adjudicator_id,
        holder_adjudication=lc.Adjudication(record.adjudication),
        holder_eligibility_suspended=record.eligibility_suspended,
        holder_separated=holder.status == PersonStatus.SEPARATED,
    )
    refusal = lc.check_action(
        facts,
        action,
        actor_id=actor.operator_id if actor.operator_id is not None else -1,
        actor_person_id=actor.person_id,
        today=today or utcnow().date(),
    )
    if refusal:
        raise LifecycleRefused(refusal.detail, code=refusal.code, state=cred.state)
    old = lc.CredentialState(cred.state)
    new = lc.target_state(action)
    cred.state = new
    if action is lc.Action.ENROLL:
        cred.registrar_id = actor.operator_id
    elif action is lc.Action.ADJUDICATE:
        cred.adjudicator_id = actor.operator_id
    elif action is lc.Action.ISSUE:
        cred.issuer_id = actor.operator_id
    now = utcnow()
    session.add(
        CredentialTransition(
            credential_id=cred.id,
            action=action.value,
            from_state=old,
            to_state=new,
            actor_id=actor.operator_id,
            at=now,
            reason=reason,
        )
    )
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action=f"credential.{action.value}",
        entity=Entity.CREDENTIAL,
        entity_id=cred.id,
        data={"from": old, "to": new, "reason": reason},
    )
    stage(
        session,
        CredentialStateChanged(
            cred.id, cred.person_id, old, new, new in lc.USABLE_STATES, reason, now
        ),
    )
    return cred


async def update_credential(
    session: AsyncSession,
    actor: Actor,
    credential_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> Credential:
    """Binds identifiers before issuance, or shortens validity at any time."""
    cred = await get_or_404(session, Credential, credential_id)
    check_version(cred, expected_version)
    if actor.person_id == cred.person_id:
        # Binding identifiers to one's own card is as much self-dealing as issuing it.
        raise LifecycleRefused(
            "an operator may not change their own credential", code="self_dealing"
        )
    changes = dict(changes)
    certs = changes.pop("certificates", None)
    id_fields = {k for k in changes if k in ("fasc_n", "card_uuid", "badge_number")}
    if (id_fields or certs is not None) and cred.state not in _EDITABLE_STATES:
        raise LifecycleRefused(
            f"identifiers of a credential that is {cred.state} cannot change; "
            "issue a new credential instead",
            code="identifiers_frozen",
        )
    if cred.state in lc.FINAL_STATES:
        raise LifecycleRefused(f"the credential is {cred.state}", code="credential_final")
    if "valid_until" in changes or "valid_from" in changes:
        vf = changes.get("valid_from", cred.valid_from)
        vu = changes.get("valid_until", cred.valid_until)
        if cred.state not in _EDITABLE_STATES and (vf != cred.valid_from or vu > cred.valid_until):
            raise LifecycleRefused(
                "the validity of an issued credential can only be shortened",
                code="validity_frozen",
            )
        bad = lc.validity_refusal(CredentialKind(cred.kind), vf, vu)
        if bad:
            raise InvalidInput(bad.detail, code=bad.code)
    await _unique_identifiers(session, changes, exclude_id=cred.id)
    diff = apply_changes(cred, changes)
    if certs is not None:
        await _unique_certificates(session, certs, cred.id)
        old_certs = sorted((c.slot, c.sha256) for c in cred.certificates)
        new_certs = sorted((c["slot"], c["sha256"]) for c in certs)
        if old_certs != new_certs:
            cred.certificates.clear()
            await session.flush()
            cred.certificates.extend(CredentialCertificate(slot=s, sha256=h) for s, h in new_certs)
            diff["certificates"] = [old_certs, new_certs]
            cred.updated_at = utcnow()  # bumps the version even if only children changed
    if not diff:
        return cred
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="credential.update",
        entity=Entity.CREDENTIAL,
        entity_id=cred.id,
        data={"changes": {k: [_redact(k, a), _redact(k, b)] for k, (a, b) in diff.items()}},
    )
    if "valid_until" in diff:
        stage(
            session,
            CredentialStateChanged(
                cred.id,
                cred.person_id,
                cred.state,
                cred.state,
                cred.state in lc.USABLE_STATES,
                "validity changed",
            ),
        )
    return cred


async def history(session: AsyncSession, credential_id: int) -> list[CredentialTransition]:
    await get_or_404(session, Credential, credential_id)
    rows = await session.scalars(
        select(CredentialTransition)
        .where(CredentialTransition.credential_id == credential_id)
        .order_by(CredentialTransition.id)
    )
    return list(rows.all())
