"""People, their personnel-security records and continuous-vetting alerts.

An open alert that suspends eligibility, an unfavorable adjudication or a separation
suspends every credential of the person that could open a door, in the same transaction,
and stages one `CredentialsRevoked` event for the decision caches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import utcnow
from accessd.errors import Conflict, InvalidInput, PermissionDenied
from accessd.events import CredentialsRevoked, CredentialStateChanged, PersonChanged, stage
from accessd.models import Credential, CredentialTransition, Person, SecurityRecord, VettingAlert
from accessd.models.enums import Adjudication, AlertStatus, Entity, PersonStatus
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404
from policies.lifecycle import Action, CredentialState

#: States whose credentials are suspended when the holder's eligibility goes.
_SUSPENDABLE = (CredentialState.ISSUED, CredentialState.ACTIVE)


async def create_person(
    session: AsyncSession,
    actor: Actor,
    fields: Mapping[str, Any],
    security: Mapping[str, Any] | None = None,
) -> Person:
    ext = fields.get("external_id")
    if ext is not None and await session.scalar(select(Person.id).where(Person.external_id == ext)):
        raise Conflict(f"a person with external_id {ext!r} exists already", code="duplicate")
    person = Person(**fields)
    session.add(person)
    await session.flush()
    record = SecurityRecord(person_id=person.id, **(security or {}))
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="person.create",
        entity=Entity.PERSON,
        entity_id=person.id,
        data={**fields, "security": dict(security or {})},
    )
    return person


async def update_person(
    session: AsyncSession,
    actor: Actor,
    person_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> Person:
    person = await get_or_404(session, Person, person_id)
    check_version(person, expected_version)
    ext = changes.get("external_id")
    if (
        ext is not None
        and ext != person.external_id
        and await session.scalar(select(Person.id).where(Person.external_id == ext))
    ):
        raise Conflict(f"a person with external_id {ext!r} exists already", code="duplicate")
    diff = apply_changes(person, changes)
    if not diff:
        return person
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="person.update",
        entity=Entity.PERSON,
        entity_id=person.id,
        data={"changes": diff},
    )
    if diff.get("status", [None, None])[1] == PersonStatus.SEPARATED:
        await suspend_all_credentials(session, actor, person.id, "person separated")
    stage(session, PersonChanged(person.id, tuple(diff)))
    return person


async def get_security(session: AsyncSession, person_id: int) -> SecurityRecord:
    await get_or_404(session, Person, person_id)
    return await get_or_404(session, SecurityRecord, person_id)


async def update_security(
    session: AsyncSession,
    actor: Actor,
    person_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> SecurityRecord:
    record = await get_security(session, person_id)
    check_version(record, expected_version)
    _not_own(actor, person_id)
    if "eligibility_suspended" in changes:
        raise InvalidInput(
            "eligibility is suspended and restored through vetting alerts", code="read_only_field"
        )
    if changes.get("adjudication") is not None and "adjudicated_on" not in changes:
        changes = {**changes, "adjudicated_on": utcnow().date()}
    diff = apply_changes(record, changes)
    if not diff:
        return record
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="security.update",
        entity=Entity.PERSON,
        entity_id=person_id,
        data={"changes": diff},
    )
    if diff.get("adjudication", [None, None])[1] == Adjudication.UNFAVORABLE:
        await suspend_all_credentials(session, actor, person_id, "unfavorable adjudication")
    stage(session, PersonChanged(person_id, tuple(f"security.{k}" for k in diff)))
    return record


def _not_own(actor: Actor, person_id: int) -> None:
    """Nobody adjudicates or clears their own personnel-security record."""
    if actor.person_id == person_id:
        raise PermissionDenied(
            "an operator may not change their own personnel-security record", code="self_dealing"
        )


async def raise_alert(
    session: AsyncSession,
    actor: Actor,
    person_id: int,
    *,
    source: str,
    category: str,
    description: str,
    suspends_eligibility: bool,
) -> tuple[VettingAlert, list[int]]:
    """Records a continuous-vetting alert; returns it and the credentials it suspended."""
    record = await get_security(session, person_id)
    alert = VettingAlert(
        person_id=person_id,
        source=source,
        category=category,
        description=description,
        suspends_eligibility=suspends_eligibility,
        received_by=actor.operator_id,
    )
    session.add(alert)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="vetting.alert",
        entity=Entity.PERSON,
        entity_id=person_id,
        data={
            "alert_id": alert.id,
            "source": source,
            "category": category,
            "suspends_eligibility": suspends_eligibility,
        },
    )
    suspended: list[int] = []
    if suspends_eligibility:
        if not record.eligibility_suspended:
            record.eligibility_suspended = True
            await session.flush()
        suspended = await suspend_all_credentials(
            session, actor, person_id, f"continuous-vetting alert {alert.id}: {category}"
        )
    return alert, suspended


async def resolve_alert(
    session: AsyncSession,
    actor: Actor,
    alert_id: int,
    *,
    upheld: bool,
    resolution: str,
) -> VettingAlert:
    """Closes an alert. A cleared alert restores eligibility once no other suspending alert
    is open or upheld; the credentials stay suspended until a security officer reinstates
    them."""
    alert = await get_or_404(session, VettingAlert, alert_id)
    _not_own(actor, alert.person_id)
    if alert.status != AlertStatus.OPEN:
        raise Conflict(f"alert {alert_id} is already {alert.status}", code="alert_closed")
    alert.status = AlertStatus.UPHELD if upheld else AlertStatus.CLEARED
    alert.resolved_at = utcnow()
    alert.resolved_by = actor.operator_id
    alert.resolution = resolution
    await session.flush()
    if alert.suspends_eligibility and not upheld:
        # An upheld alert keeps eligibility suspended: clearing a later one must not lift it.
        still_open = await session.scalar(
            select(func.count()).where(
                VettingAlert.person_id == alert.person_id,
                VettingAlert.status.in_((AlertStatus.OPEN, AlertStatus.UPHELD)),
                VettingAlert.suspends_eligibility.is_(True),
            )
        )
        if not still_open:
            record = await get_security(session, alert.person_id)
            record.eligibility_suspended = False
            await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="vetting.resolve",
        entity=Entity.PERSON,
        entity_id=alert.person_id,
        data={"alert_id": alert.id, "status": alert.status, "resolution": resolution},
    )
    stage(session, PersonChanged(alert.person_id, ("security.eligibility_suspended",)))
    return alert


async def suspend_all_credentials(
    session: AsyncSession, actor: Actor, person_id: int, reason: str
) -> list[int]:
    """Suspends every issued or active credential of the person; returns their ids."""
    creds = (
        await session.scalars(
            select(Credential)
            .where(Credential.person_id == person_id, Credential.state.in_(_SUSPENDABLE))
            .order_by(Credential.id)
            .with_for_update()
        )
    ).all()
    now = utcnow()
    for cred in creds:
        old = cred.state
        cred.state = CredentialState.SUSPENDED
        session.add(
            CredentialTransition(
                credential_id=cred.id,
                action=Action.SUSPEND.value,
                from_state=old,
                to_state=CredentialState.SUSPENDED,
                actor_id=actor.operator_id,
                at=now,
                reason=reason,
            )
        )
        stage(
            session,
            CredentialStateChanged(
                cred.id, person_id, old, CredentialState.SUSPENDED, False, reason, now
            ),
        )
    if creds:
        await session.flush()
        ids = [c.id for c in creds]
        await audit.record(
            session,
            actor=actor.label,
            action="credential.suspend_all",
            entity=Entity.PERSON,
            entity_id=person_id,
            data={"credential_ids": ids, "reason": reason},
        )
        stage(session, CredentialsRevoked(person_id, tuple(ids), reason, now))
        return ids
    return []
