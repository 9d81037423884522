"""Logging in and out; who am I."""

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from accessd.api.deps import ActorDep, SessionDep, StateDep, bearer_scheme
from accessd.api.schemas.operators import LoginRequest, Me, TokenPublic
from accessd.auth import tokens
from accessd.errors import AuthenticationFailed, TooManyAttempts

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenPublic,
    responses={429: {"description": "Too many failed logins from this account or address"}},
)
async def login(
    body: LoginRequest, request: Request, session: SessionDep, state: StateDep
) -> TokenPublic:
    """Exchanges a username and password for a bearer token.

    Failed logins are audited and slow the account and the client address down
    (429 with Retry-After, before any password is checked; accessd/auth/throttle.py)."""
    address = request.client.host if request.client is not None else "unknown"
    wait = state.logins.begin(body.username, address)
    if wait > 0:
        raise TooManyAttempts(
            "too many failed logins for this account or from this address; try again later",
            retry_after=math.ceil(wait),
        )
    try:
        token, row = await tokens.login(
            session,
            body.username,
            body.password,
            state.settings.token_ttl_seconds,
            known=state.logins.known(body.username, address),
        )
        await session.commit()
    except AuthenticationFailed:
        await session.rollback()
        locked = state.logins.failed(body.username, address)
        await tokens.record_failed_login(session, body.username, address, locked=locked)
        await session.commit()
        raise
    except BaseException:
        state.logins.abandon(body.username, address)
        raise
    state.logins.succeeded(body.username, address)
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
        readers=sorted(actor.readers) if actor.readers is not None else None,
    )
