"""Who a bearer token stands for: checked in the database, or for a door reader in the
token cache when the database confirmed it lately or cannot be reached (token_cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from accessd.auth.token_cache import CachedToken, TokenCache
from accessd.auth.tokens import authenticate_token, check_form, digest
from accessd.db.base import utcnow
from accessd.db.outage import DatabaseHealth, is_unavailable
from accessd.errors import AuthenticationFailed
from accessd.models.enums import Role
from accessd.services.actors import Actor
from accessd.services.operators import actor_of

#: The accounts whose tokens are cached: devices that decide from the snapshot.
_DEVICE_ROLES = frozenset({Role.DOOR_READER.value})


def _usable(entry: CachedToken | None) -> CachedToken | None:
    if entry is None or entry.expires_at <= utcnow():
        return None
    return entry


async def principal(
    session: AsyncSession, token: str, cache: TokenCache, health: DatabaseHealth
) -> Actor:
    """The actor ``token`` authenticates; AuthenticationFailed says why there is none.

    Database errors that mean an outage propagate (503) unless a door reader's token was
    verified before, whose last answer then stands (see token_cache for the bounds)."""
    check_form(token)
    key = digest(token)
    entry = _usable(cache.get(key))
    if entry is not None and (cache.fresh(entry) or not health.available):
        # Known to the outage already: no attempt that would wait out a connect timeout.
        return entry.actor
    generation = cache.generation
    started = health.now()
    try:
        op, row = await authenticate_token(session, token)
    except AuthenticationFailed:
        cache.drop(key)
        raise
    except Exception as exc:
        if entry is None or not is_unavailable(exc):
            raise
        health.failed("token check", exc)
        return entry.actor
    health.succeeded(started)
    actor = actor_of(op)
    if actor.roles == _DEVICE_ROLES:
        cache.put(key, actor, row.expires_at, generation=generation)
    return actor
