"""Reader attestation keys, read from the database and kept for a few seconds.

A BIO proof or a signed PIN claim needs the key of the reader that signed it. Keys change
rarely (a facility manager rotates one), so each is cached for ``ttl`` seconds: a rotation
takes effect at the door within that time, and a decision costs no query while it is warm.
While the database is away the last key read stands (no rotation can be written then), so
such a door keeps deciding from the snapshot like the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db.outage import is_unavailable
from accessd.models import Reader

log = logging.getLogger(__name__)


class ReaderKeys:
    """``await keys(reader_id)`` → the reader's public key, or None when it has none."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[int, tuple[float, PublicKeyTypes | None]] = {}

    async def __call__(self, reader_id: int) -> PublicKeyTypes | None:
        now = self._clock()
        hit = self._cache.get(reader_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            async with self._sessions() as session:
                pem = await session.scalar(
                    select(Reader.attestation_key).where(Reader.id == reader_id)
                )
        except Exception as exc:
            if hit is None or not is_unavailable(exc):
                raise
            return hit[1]
        key = None
        if pem:
            try:
                key = load_pem_public_key(pem.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                # The API validates keys on the way in; a bad one here was written around it.
                log.warning("reader %d has an attestation key that does not load", reader_id)
        self._cache[reader_id] = (now + self._ttl, key)
        return key

    def forget(self, reader_id: int | None = None) -> None:
        """Drop one reader's cached key (or all), e.g. after the reader was edited."""
        if reader_id is None:
            self._cache.clear()
        else:
            self._cache.pop(reader_id, None)
