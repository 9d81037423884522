"""Bearer tokens: issued at login, checked on every request, revoked at logout.

Only a token's SHA-256 is stored, so a copy of the database lets nobody act as an operator.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from accessd.auth.passwords import verify_password
from accessd.auth.token_cache import forget_everywhere
from accessd.db.base import utcnow
from accessd.errors import AuthenticationFailed
from accessd.models import ApiToken, Operator
from accessd.models.enums import Entity
from accessd.services import audit

TOKEN_PREFIX = "acd_"


def digest(token: str) -> str:
    """What a token is stored and cached by."""
    return hashlib.sha256(token.encode()).hexdigest()


def forget_cached(
    session: AsyncSession, operator_id: int | None = None, token_digest: str | None = None
) -> None:
    """Drops an operator's (or one token's) cached verification in this process now, and
    again when ``session`` commits: a check that read the token between the two, before
    the revocation was committed, must not leave its answer behind (token_cache)."""
    forget_everywhere(digest=token_digest, operator_id=operator_id)

    def again(_: Session) -> None:
        forget_everywhere(digest=token_digest, operator_id=operator_id)

    event.listen(session.sync_session, "after_commit", again, once=True)


async def issue_token(
    session: AsyncSession, op: Operator, ttl_seconds: int
) -> tuple[str, ApiToken]:
    """A new token for `op`, valid `ttl_seconds`; the plain token is returned only here."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        operator_id=op.id,
        token_sha256=digest(token),
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=f"operator:{op.username}",
        action="token.issue",
        entity=Entity.OPERATOR,
        entity_id=op.id,
        data={"token_id": row.id, "expires_at": row.expires_at},
    )
    return token, row


async def login(
    session: AsyncSession, username: str, password: str, ttl_seconds: int, *, known: bool = False
) -> tuple[str, ApiToken]:
    """``known``: this account logged in from this address before (its own check lane)."""
    op = await session.scalar(select(Operator).where(Operator.username == username))
    ok = await verify_password(op.password_hash if op else None, password, known=known)
    if not ok or op is None or op.disabled:
        raise AuthenticationFailed("wrong username or password", code="bad_credentials")
    return await issue_token(session, op, ttl_seconds)


async def record_failed_login(
    session: AsyncSession, username: str, address: str, *, locked: bool
) -> None:
    """Audits a wrong username or password (the caller commits it, though the login fails).

    The username is what was typed: it may be no operator's, or a password typed into the
    wrong field, so it is cut short; the password is never recorded."""
    op = await session.scalar(select(Operator).where(Operator.username == username))
    await audit.record(
        session,
        actor=f"address:{address}"[:80],
        action="login.failed",
        entity=Entity.OPERATOR,
        entity_id=op.id if op is not None else "unknown",
        data={"username": username[:64], "address": address, "locked": locked},
    )


async def authenticate(session: AsyncSession, token: str) -> Operator:
    """The operator a token belongs to; AuthenticationFailed says why there is none."""
    return (await authenticate_token(session, token))[0]


def check_form(token: str) -> None:
    """Refuses what cannot be one of our tokens before anything is looked up."""
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed("malformed bearer token", code="bad_token")


async def authenticate_token(session: AsyncSession, token: str) -> tuple[Operator, ApiToken]:
    """The operator a token belongs to and the token's row; AuthenticationFailed else."""
    check_form(token)
    row = await session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(token)))
    if row is None or row.revoked:
        raise AuthenticationFailed("unknown or revoked bearer token", code="bad_token")
    if row.expires_at <= utcnow():
        raise AuthenticationFailed("the bearer token has expired", code="token_expired")
    op = await session.get(Operator, row.operator_id)
    if op is None or op.disabled:
        raise AuthenticationFailed("the operator is disabled", code="operator_disabled")
    return op, row


async def revoke_token(session: AsyncSession, token: str) -> None:
    row = await session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(token)))
    if row is not None and not row.revoked:
        row.revoked = True
        forget_cached(session, token_digest=row.token_sha256)
        # Named like every other entry of the operator's ("operator:<username>"), so the
        # audit's actor filter finds their logouts too.
        op = await session.get(Operator, row.operator_id)
        await audit.record(
            session,
            actor=f"operator:{op.username}" if op else f"operator_id:{row.operator_id}",
            action="token.revoke",
            entity=Entity.OPERATOR,
            entity_id=row.operator_id,
            data={"token_id": row.id},
        )


async def revoke_all(session: AsyncSession, operator_id: int, *, why: str, actor: str) -> int:
    """Revokes every live token of an operator (a password set, roles changed, the account
    disabled): what was granted under the old terms ends with them. Returns how many."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.operator_id == operator_id, ApiToken.revoked.is_(False))
        .values(revoked=True)
        .returning(ApiToken.id)
    )
    revoked = [row[0] for row in result]
    forget_cached(session, operator_id)
    if revoked:
        await audit.record(
            session,
            actor=actor,
            action="token.revoke_all",
            entity=Entity.OPERATOR,
            entity_id=operator_id,
            data={"tokens": len(revoked), "why": why},
        )
    return len(revoked)
