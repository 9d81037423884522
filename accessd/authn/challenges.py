"""Card challenges: random, single-use, short-lived, bound to the reader that asked.

A challenge is self-describing and MAC'd with the service's key (version, reader, time of
issue, 16 random bytes, 16-byte HMAC-SHA256 tag), so issuing one stores nothing: a panel can
fetch them ahead of time and any instance sharing the key can check them. Single use is
enforced by remembering every consumed challenge until it would have expired anyway, so
the memory held is bounded by the rate of use times the lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from accessd.authn.errors import ChallengeRejected

VERSION = 1
_HEAD = struct.Struct(">BIQ")  # version, reader id (0: enrollment station), issued at (ms)
RANDOM_BYTES = 16
TAG_BYTES = 16
SIZE = _HEAD.size + RANDOM_BYTES + TAG_BYTES  # 45 bytes
DEFAULT_TTL = 30.0
#: A clock step backwards on the issuing host must not make fresh challenges look future.
CLOCK_SKEW = 2.0


@dataclass(frozen=True, slots=True)
class Challenge:
    """What a reader gets: the bytes to have the card sign and when they stop being good."""

    value: bytes
    reader_id: int
    expires_at: float  # Unix time


class ChallengeBook:
    """Issues challenges and consumes each at most once."""

    def __init__(
        self,
        key: bytes | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        max_outstanding: int = 1_000_000,
    ) -> None:
        # Without a configured key, one per process: challenges then only work on the
        # instance that issued them, which is right for a single instance.
        self._key = key or secrets.token_bytes(32)
        if len(self._key) < 16:
            raise ValueError("the challenge key must be at least 16 bytes")
        self.ttl = ttl
        self._clock = clock
        self._max = max_outstanding
        #: consumed challenge → the time it would have expired; oldest first.
        self._used: OrderedDict[bytes, float] = OrderedDict()
        self.issued = 0
        self.rejected: dict[str, int] = {}

    def issue(self, reader_id: int) -> Challenge:
        """A new challenge for ``reader_id`` (0 for an enrollment station)."""
        if not 0 <= reader_id < 2**32:
            raise ValueError("reader id out of range")
        now = self._clock()
        head = _HEAD.pack(VERSION, reader_id, int(now * 1000))
        body = head + secrets.token_bytes(RANDOM_BYTES)
        self.issued += 1
        return Challenge(body + self._tag(body), reader_id, now + self.ttl)

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:TAG_BYTES]

    def _reject(self, code: str, message: str) -> ChallengeRejected:
        self.rejected[code] = self.rejected.get(code, 0) + 1
        return ChallengeRejected(message, code=code)

    def consume(self, value: bytes, reader_id: int) -> None:
        """Accept ``value`` once for ``reader_id``; raise ChallengeRejected saying why not."""
        if len(value) != SIZE:
            raise self._reject("challenge_malformed", f"a challenge is {SIZE} bytes")
        body, tag = value[:-TAG_BYTES], value[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise self._reject("challenge_forged", "the challenge was not issued by accessd")
        version, issued_to, issued_ms = _HEAD.unpack_from(body)
        if version != VERSION:
            raise self._reject("challenge_malformed", f"challenge version {version}")
        if issued_to != reader_id:
            raise self._reject(
                "challenge_wrong_reader",
                f"the challenge was issued to reader {issued_to}, not {reader_id}",
            )
        now = self._clock()
        issued = issued_ms / 1000
        expires = issued + self.ttl
        if now > expires:
            raise self._reject(
                "challenge_expired", f"the challenge expired {now - expires:.1f} s ago"
            )
        if issued > now + CLOCK_SKEW:
            raise self._reject("challenge_malformed", "the challenge is from the future")
        self._prune(now)
        if value in self._used:
            raise self._reject("challenge_replayed", "the challenge has been used already")
        if len(self._used) >= self._max:
            # Full of live entries: refusing is safe, forgetting one would allow a replay.
            raise self._reject("challenge_busy", "too many challenges in use; try again")
        self._used[value] = expires

    def _prune(self, now: float) -> None:
        used = self._used
        while used:
            first = next(iter(used))
            if used[first] >= now:
                # Entries are added in use order, not expiry order; an entry that outlives
                # a later one only delays pruning, it never lets a replay through.
                break
            del used[first]

    @property
    def outstanding(self) -> int:
        """Consumed challenges still remembered."""
        return len(self._used)
