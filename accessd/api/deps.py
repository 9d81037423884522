"""Dependencies: the app state, a database session, the acting operator, versions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.api.schemas.common import MAX_ID
from accessd.api.state import AppState
from accessd.auth.permissions import Permission
from accessd.auth.principals import principal
from accessd.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from accessd.services.actors import Actor


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.accessd
    return state


StateDep = Annotated[AppState, Depends(get_state)]

#: A record id in the path, an id to filter a list by, and the keyset cursor of a list page;
#: bounded like the columns they are compared with (see MAX_ID).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
AfterQuery = Annotated[
    int, Query(ge=0, le=MAX_ID, description="next_after of the previous page; 0 for the first")
]


def no_nul_in_query(request: Request) -> None:
    """Refuses a query value holding NUL, which PostgreSQL text cannot store or compare."""
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise RequestValidationError(
                [
                    {
                        "type": "string_nul",
                        "loc": ("query", name),
                        "msg": "must not contain NUL characters",
                        "input": value,
                    }
                ]
            )


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

bearer_scheme = HTTPBearer(auto_error=False, description="Token from POST /v1/auth/token")


async def current_actor(
    session: SessionDep,
    state: StateDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Actor:
    if creds is None or creds.scheme.lower() != "bearer":
        raise AuthenticationFailed("send Authorization: Bearer <token>", code="no_token")
    actor = await principal(session, creds.credentials, state.tokens, state.db_health)
    # End the read: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE), and
    # a handler that works in a session of its own would otherwise wait on this one.
    await session.rollback()
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Actor]]:
    """A dependency that yields the actor when their roles grant `permission`."""

    async def dependency(actor: ActorDep) -> Actor:
        if permission not in actor.permissions:
            raise PermissionDenied(
                f"this needs the {permission.value} permission, which none of your roles "
                f"({', '.join(sorted(actor.roles)) or 'none'}) grants",
                permission=permission.value,
            )
        return actor

    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


def require_any(*permissions: Permission) -> Callable[..., Coroutine[Any, Any, Actor]]:
    """A dependency that yields the actor when their roles grant one of `permissions`;
    the route then checks which one its input needs."""

    async def dependency(actor: ActorDep) -> Actor:
        if not actor.permissions & set(permissions):
            names = " or ".join(p.value for p in permissions)
            raise PermissionDenied(
                f"this needs the {names} permission, which none of your roles "
                f"({', '.join(sorted(actor.roles)) or 'none'}) grants",
                permission=permissions[0].value,
            )
        return actor

    dependency.__name__ = "require_any_" + "_".join(p.name.lower() for p in permissions)
    return dependency


_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def parse_if_match(
    if_match: Annotated[
        str | None,
        Header(description='The ETag of the version you read, e.g. "3"; required to update'),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    m = _ETAG.match(if_match)
    if m is None:
        raise InvalidInput(
            'If-Match must be the ETag of one version, e.g. "3"', code="bad_if_match"
        )
    return int(m.group(1))


IfMatchDep = Annotated[int | None, Depends(parse_if_match)]


def etag(version: int) -> str:
    return f'"{version}"'
