"""Door-reader tokens verified lately, kept in memory so doors on HTTP outlive a database outage.

A door reader asks for a decision every time a card is presented, and the decision itself
comes from the in-memory snapshot; only its token check needed the database, so an
outage turned every HTTP door to 503 while MQTT doors kept deciding. Here a verified
device token (by its SHA-256, never the token) maps to the principal it stands for:

- while the database is up, an entry is trusted for ``recheck_seconds`` and then checked
  again; a revocation made by another instance reaches this one sooner through the audit
  feed (the decision service forgets an operator's entries at any entry about them, one
  poll, about a second, later), and within ``recheck_seconds`` should the feed fall behind;
- while the database is away, the last verified answer stands until the token's own
  expiry: nobody can revoke a token then (revocation is a database write), so the only
  revocations this misses are those made elsewhere that it had not read when the
  database went away (a feed poll, at most ``recheck_seconds``, before the outage);
- a revocation in this process (logout, a password, role, disabled or binding change)
  drops the operator's entries at once, and once more when its transaction commits, so a
  check that read the row just before the commit cannot put the old answer back.

Only device accounts (the door_reader role alone) are kept: every other operator's work
needs the database anyway, and their tokens are checked there on each request.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from accessd.services.actors import Actor

#: Entries beyond this are not kept (a fleet has hundreds of readers, not this many).
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedToken:
    actor: Actor
    #: When the token stops working, whatever the cache says.
    expires_at: datetime
    #: When the database last confirmed it (the cache's clock).
    checked_at: float


class TokenCache:
    """Verified door-reader tokens by digest; see the module for what it promises."""

    def __init__(
        self, recheck_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.recheck_seconds = recheck_seconds
        self._clock = clock
        self._entries: dict[str, CachedToken] = {}
        #: Bumped by every forget: a check that began before one does not store its answer.
        self.generation = 0
        _LIVE.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> CachedToken | None:
        return self._entries.get(digest)

    def fresh(self, entry: CachedToken) -> bool:
        """Whether ``entry`` may be used without asking the database again."""
        return self._clock() - entry.checked_at < self.recheck_seconds

    def put(self, digest: str, actor: Actor, expires_at: datetime, *, generation: int) -> None:
        """Keeps a confirmed answer, unless a forget happened since ``generation`` was read."""
        if generation != self.generation or self.recheck_seconds <= 0:
            return
        if digest not in self._entries and len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[digest] = CachedToken(actor, expires_at, self._clock())

    def drop(self, digest: str) -> None:
        """Drops an entry the database just refused. No check in flight needs stopping (as
        `forget` does), so refused tokens sent in bulk cannot keep good ones out."""
        self._entries.pop(digest, None)

    def forget(self, *, digest: str | None = None, operator_id: int | None = None) -> None:
        """Drops one token's entry, or every entry of an operator."""
        self.generation += 1
        if digest is not None:
            self._entries.pop(digest, None)
        if operator_id is not None:
            for key in [k for k, e in self._entries.items() if e.actor.operator_id == operator_id]:
                del self._entries[key]


#: Every cache of this process, so a revocation reaches them all (tests run several apps).
_LIVE: weakref.WeakSet[TokenCache] = weakref.WeakSet()


def forget_everywhere(*, digest: str | None = None, operator_id: int | None = None) -> None:
    """Drops a token (or an operator's tokens) from every cache in this process."""
    for cache in list(_LIVE):
        cache.forget(digest=digest, operator_id=operator_id)
