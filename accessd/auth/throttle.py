"""Login throttling: back-off per account and per client address, decided before hashing.

Each password check is argon2id at 64 MiB: a flood of wrong passwords is a flood of
CPU. Measured before this existed, 300 bad logins pushed a good login from 142 ms to
7.9 s and /healthz to 2.9 s. So an account or an address that keeps failing is refused
(429, Retry-After) before its password is looked at, and the checks that do run are
limited to as many at once as the machine has cores.

The rule, per key (the username, and the client address, separately): the first
``free`` failures within ``window`` cost nothing; each one after that locks the key for
``base`` seconds, doubled per further failure, at most ``cap``. A success clears the
account's failures (not the address's: one good login from a shared address does not
forgive a guesser behind the same NAT). Per process: several instances each keep their
own count, which multiplies the free attempts by the instance count, no more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rule:
    free: int
    window: float
    base: float = 1.0
    cap: float = 15 * 60.0


#: An operator mistyping is not locked out; a guesser is slowed to a crawl after five.
ACCOUNT = Rule(free=5, window=15 * 60.0)
#: A client address tries many accounts (a password spray): more room, same back-off.
ADDRESS = Rule(free=20, window=15 * 60.0)
#: How long a successful login makes its account and address "known" (own check lane).
KNOWN_FOR = 30 * 24 * 3600.0
#: Keys remembered at most; the oldest are forgotten first (a spray of random usernames
#: must not grow memory without bound).
MAX_KEYS = 100_000


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    locked_until: float = 0.0
    #: Checks under way: a burst arrives before any of it has failed, and each one in
    #: flight counts as a failure to come (300 at once were all checked otherwise).
    pending: int = 0


class LoginThrottle:
    def __init__(
        self,
        *,
        account: Rule = ACCOUNT,
        address: Rule = ADDRESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = {"account": account, "address": address}
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        #: (username, address) pairs that logged in, and until when they count as known.
        self._known: dict[tuple[str, str], float] = {}
        self.refused = 0

    def known(self, username: str, address: str) -> bool:
        """Whether this account logged in from this address within KNOWN_FOR."""
        until = self._known.get((username.casefold(), address))
        return until is not None and until > self._clock()

    def wait(self, username: str, address: str) -> float:
        """Seconds until this username may be tried from this address (0: now)."""
        now = self._clock()
        longest = 0.0
        for key in self._keys(username, address):
            record = self._records.get(key)
            if record is None:
                continue
            if record.locked_until > now:
                longest = max(longest, record.locked_until - now)
            rule = self._rules[key[0]]
            recent = sum(1 for t in record.failures if now - t < rule.window)
            # Within the free attempts, those in flight may use up the rest: a burst gets no
            # more checks than the free ones; past them the lock above decides.
            if recent < rule.free <= recent + record.pending:
                longest = max(longest, rule.base)
        if longest:
            self.refused += 1
        return longest

    def begin(self, username: str, address: str) -> float:
        """`wait`, and when it is 0, notes a check under way (end it with `failed` or
        `succeeded`)."""
        wait = self.wait(username, address)
        if wait == 0:
            for key in self._keys(username, address):
                record = self._records.pop(key, None) or _Record()
                self._records[key] = record
                record.pending += 1
        return wait

    def abandon(self, username: str, address: str) -> None:
        """Ends a check begun with `begin` that neither failed nor succeeded (an error)."""
        self._settle(username, address)

    def _settle(self, username: str, address: str) -> None:
        for key in self._keys(username, address):
            record = self._records.get(key)
            if record is not None and record.pending:
                record.pending -= 1

    def failed(self, username: str, address: str) -> bool:
        """Notes a wrong password; returns whether that (newly) locks a key."""
        self._settle(username, address)
        now = self._clock()
        locked = False
        for key in self._keys(username, address):
            rule = self._rules[key[0]]
            record = self._records.pop(key, None) or _Record()
            self._records[key] = record  # most recent last, for forgetting the oldest
            record.failures = [t for t in record.failures if now - t < rule.window] + [now]
            over = len(record.failures) - rule.free
            if over > 0:
                record.locked_until = now + min(rule.cap, rule.base * 2 ** (over - 1))
                locked = True
        while len(self._records) > MAX_KEYS:
            del self._records[next(iter(self._records))]
        return locked

    def succeeded(self, username: str, address: str) -> None:
        self._settle(username, address)
        self._records.pop(("account", username.casefold()), None)
        pair = (username.casefold(), address)
        self._known.pop(pair, None)
        self._known[pair] = self._clock() + KNOWN_FOR
        while len(self._known) > MAX_KEYS:
            del self._known[next(iter(self._known))]

    @staticmethod
    def _keys(username: str, address: str) -> tuple[tuple[str, str], ...]:
        return (("account", username.casefold()), ("address", address))
