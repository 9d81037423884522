"""Operator accounts and bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.auth.passwords import hash_password, verify_password
from accessd.db.base import utcnow
from accessd.errors import AuthenticationFailed, Conflict, InvalidInput
from accessd.models import ApiToken, Operator
from accessd.models.enums import Role
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404

TOKEN_PREFIX = "acd_"


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(op: Operator) -> Actor:
    return Actor(op.id, op.username, frozenset(op.roles), op.person_id)


def validate_roles(roles: Iterable[str]) -> list[str]:
    out = []
    for r in roles:
        try:
            out.append(Role(r).value)
        except ValueError:
            valid = ", ".join(x.value for x in Role)
            raise InvalidInput(f"unknown role {r!r}; roles are {valid}") from None
    if not out:
        raise InvalidInput("an operator needs at least one role")
    return sorted(set(out))


async def create_operator(
    session: AsyncSession,
    actor: Actor,
    *,
    username: str,
    password: str,
    roles: Iterable[str],
    display_name: str = "",
    person_id: int | None = None,
) -> Operator:
    if await session.scalar(select(Operator.id).where(Operator.username == username)):
        raise Conflict(f"operator {username!r} exists already", code="username_taken")
    try:
        pw_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="weak_password") from exc
    op = Operator(
        username=username,
        display_name=display_name,
        password_hash=pw_hash,
        roles=validate_roles(roles),
        person_id=person_id,
    )
    session.add(op)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="operator.create",
        entity="operator",
        entity_id=op.id,
        data={"username": username, "roles": op.roles, "person_id": person_id},
    )
    return op


async def issue_token(
    session: AsyncSession, op: Operator, ttl_seconds: int
) -> tuple[str, ApiToken]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        operator_id=op.id,
        token_sha256=_token_digest(token),
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=f"operator:{op.username}",
        action="token.issue",
        entity="operator",
        entity_id=op.id,
        data={"token_id": row.id, "expires_at": row.expires_at},
    )
    return token, row


async def login(
    session: AsyncSession, username: str, password: str, ttl_seconds: int
) -> tuple[str, ApiToken]:
    op = await session.scalar(select(Operator).where(Operator.username == username))
    ok = await verify_password(op.password_hash if op else None, password)
    if not ok or op is None or op.disabled:
        raise AuthenticationFailed("wrong username or password", code="bad_credentials")
    return await issue_token(session, op, ttl_seconds)


async def authenticate(session: AsyncSession, token: str) -> Operator:
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed("malformed bearer token", code="bad_token")
    row = await session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token))
    )
    if row is None or row.revoked:
        raise AuthenticationFailed("unknown or revoked bearer token", code="bad_token")
    if row.expires_at <= utcnow():
        raise AuthenticationFailed("the bearer token has expired", code="token_expired")
    op = await session.get(Operator, row.operator_id)
    if op is None or op.disabled:
        raise AuthenticationFailed("the operator is disabled", code="operator_disabled")
    return op


async def revoke_token(session: AsyncSession, token: str) -> None:
    row = await session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token))
    )
    if row is not None and not row.revoked:
        row.revoked = True
        # Named like every other entry of the operator's ("operator:<username>"), so the
        # audit's actor filter finds their logouts too.
        op = await session.get(Operator, row.operator_id)
        await audit.record(
            session,
            actor=f"operator:{op.username}" if op else f"operator_id:{row.operator_id}",
            action="token.revoke",
            entity="operator",
            entity_id=row.operator_id,
            data={"token_id": row.id},
        )


async def get_operator(session: AsyncSession, operator_id: int) -> Operator:
    return await get_or_404(session, Operator, operator_id)


async def update_operator(
    session: AsyncSession,
    actor: Actor,
    operator_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> Operator:
    op = await get_operator(session, operator_id)
    check_version(op, expected_version)
    changes = dict(changes)
    password = changes.pop("password", None)
    if "roles" in changes:
        changes["roles"] = validate_roles(str(r) for r in changes["roles"])
    demoted = "roles" in changes and Role.ADMIN.value not in changes["roles"]
    if op.id == actor.operator_id and (changes.get("disabled") or demoted):
        raise Conflict("an admin may not disable or demote their own account", code="self_lockout")
    diff = apply_changes(op, changes)
    if isinstance(password, str):
        try:
            op.password_hash = hash_password(password)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="weak_password") from exc
        diff["password"] = ["…", "…"]  # that it changed, never what it is
    if diff:
        await session.flush()
        await audit.record(
            session,
            actor=actor.label,
            action="operator.update",
            entity="operator",
            entity_id=op.id,
            data={"changes": diff},
        )
    return op
