"""Logging in and out; who am I."""

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import HTTPAuthorizationCredentials

from accessd.api.deps import ActorDep, SessionDep, StateDep, bearer_scheme
from accessd.api.schemas.operators import LoginRequest, Me, TokenPublic
from accessd.auth import tokens

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic)
async def login(body: LoginRequest, session: SessionDep, state: StateDep) -> TokenPublic:
    """Exchanges a username and password for a bearer token."""
    token, row = await tokens.login(
        session, body.username, body.password, state.settings.token_ttl_seconds
    )
    await session.commit()
    return TokenPublic(access_token=token, expires_at=row.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    actor: ActorDep,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Revokes the token this request was made with."""
    del actor  # authenticated above; the token itself is what gets revoked
    assert creds is not None
    await tokens.revoke_token(session, creds.credentials)
    await session.commit()


@router.get("/me", response_model=Me)
async def me(actor: ActorDep) -> Me:
    assert actor.operator_id is not None
    return Me(
        id=actor.operator_id,
        username=actor.username,
        roles=sorted(actor.roles),
        permissions=sorted(p.value for p in actor.permissions),
    )
