"""Credentials: sponsorship, the lifecycle actions (one route each), identifiers, history."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdPath, IdQuery, IfMatchDep, SessionDep, etag, require
from accessd.api.paging import LimitQuery, rows_after, shown
from accessd.api.schemas.common import Page
from accessd.api.schemas.credentials import (
    CredentialCreate,
    CredentialPublic,
    CredentialUpdate,
    TransitionPublic,
    TransitionRequest,
)
from accessd.auth.permissions import ACTION_PERMISSION, Permission
from accessd.models import Credential, CredentialCertificate
from accessd.models.enums import CredentialKind, CredentialState
from accessd.services import credentials
from accessd.services.actors import Actor
from accessd.services.records import get_or_404
from policies import lifecycle as lc

router = APIRouter(prefix="/v1/credentials", tags=["credentials"])


def public(cred: Credential) -> CredentialPublic:
    out = CredentialPublic.model_validate(cred)
    out.allowed_actions = [
        a.value for a in lc.allowed_actions(CredentialKind(cred.kind), CredentialState(cred.state))
    ]
    return out


@router.get("", response_model=Page[CredentialPublic])
async def list_credentials(
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.CREDENTIALS_READ))],
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
    person_id: IdQuery = None,
    state: CredentialState | None = None,
    kind: CredentialKind | None = None,
    fasc_n: Annotated[str | None, Query(max_length=50)] = None,
    card_uuid: Annotated[str | None, Query(max_length=36)] = None,
    badge_number: Annotated[str | None, Query(max_length=32)] = None,
    certificate_sha256: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[CredentialPublic]:
    stmt = select(Credential)
    for column, value in (
        (Credential.person_id, person_id),
        (Credential.state, state),
        (Credential.kind, kind),
        (Credential.fasc_n, fasc_n and fasc_n.lower()),
        (Credential.card_uuid, card_uuid and card_uuid.lower()),
        (Credential.badge_number, badge_number),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if certificate_sha256 is not None:
        stmt = stmt.where(
            Credential.id.in_(
                select(CredentialCertificate.credential_id).where(
                    CredentialCertificate.sha256 == certificate_sha256.lower()
                )
            )
        )
    page = await rows_after(session, stmt, Credential.id, after=after, limit=limit)
    return shown(page, public)


@router.post("", response_model=CredentialPublic, status_code=status.HTTP_201_CREATED)
async def sponsor_credential(
    body: CredentialCreate,
    session: SessionDep,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.CREDENTIALS_SPONSOR))],
) -> CredentialPublic:
    """Sponsors a credential for a person: the first step of the FIPS 201-3 lifecycle."""
    ids = body.model_dump(include={"fasc_n", "card_uuid", "badge_number"}, exclude_none=True)
    cred = await credentials.sponsor(
        session,
        actor,
        person_id=body.person_id,
        kind=body.kind,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        reason=body.reason,
        identifiers=ids,
        certificates=[c.model_dump() for c in body.certificates],
    )
    await session.commit()
    response.headers["ETag"] = etag(cred.version)
    response.headers["Location"] = f"/v1/credentials/{cred.id}"
    return public(cred)


@router.get("/{credential_id}", response_model=CredentialPublic)
async def get_credential(
    credential_id: IdPath,
    session: SessionDep,
    response: Response,
    _: Annotated[Actor, Depends(require(Permission.CREDENTIALS_READ))],
) -> CredentialPublic:
    cred = await get_or_404(session, Credential, credential_id)
    response.headers["ETag"] = etag(cred.version)
    return public(cred)


@router.patch("/{credential_id}", response_model=CredentialPublic)
async def update_credential(
    credential_id: IdPath,
    body: CredentialUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Annotated[Actor, Depends(require(Permission.CREDENTIALS_IDENTIFY))],
) -> CredentialPublic:
    """Binds FASC-N, card UUID, badge number and certificates before issuance; shortens
    validity at any time."""
    changes = body.changes()
    if "certificates" in changes:
        changes["certificates"] = [c.model_dump() for c in body.certificates or []]
    cred = await credentials.update_credential(session, actor, credential_id, changes, version)
    await session.commit()
    response.headers["ETag"] = etag(cred.version)
    return public(cred)


@router.get("/{credential_id}/history", response_model=list[TransitionPublic])
async def credential_history(
    credential_id: IdPath,
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.CREDENTIALS_READ))],
) -> list[Any]:
    """Every lifecycle transition: who, when, from which state to which, and why."""
    return await credentials.history(session, credential_id)


def _action_route(
    action: lc.Action,
) -> Callable[..., Coroutine[Any, Any, CredentialPublic]]:
    async def take_action(
        credential_id: IdPath,
        body: TransitionRequest,
        session: SessionDep,
        response: Response,
        version: IfMatchDep,
        actor: Annotated[Actor, Depends(require(ACTION_PERMISSION[action]))],
    ) -> CredentialPublic:
        cred = await credentials.transition(
            session, actor, credential_id, action, reason=body.reason, expected_version=version
        )
        await session.commit()
        response.headers["ETag"] = etag(cred.version)
        return public(cred)

    take_action.__name__ = f"credential_{action.value}"
    return take_action


for _action in lc.Action:
    starts, target = lc.TRANSITIONS[_action]
    router.add_api_route(
        f"/{{credential_id}}/{_action.value}",
        _action_route(_action),
        methods=["POST"],
        response_model=CredentialPublic,
        summary=f"{_action.value.replace('_', ' ').capitalize()} a credential",
        description=(
            f"Moves a credential from {', '.join(sorted(s.value for s in starts))} "
            f"to {target.value}. Needs the {ACTION_PERMISSION[_action].value} permission. "
            "Refused with 409 when the lifecycle or separation of duties forbids it."
        ),
    )
