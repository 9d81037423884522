"""The offline credential cache: what a panel decides from when accessd cannot answer.

It holds a `CredSnapshot` and the deltas applied since, never credential identifiers: an
entry is keyed by HMAC-SHA256(salt, "<kind>:<value>")[:16], so a panel taken off the wall
gives away no FASC-N or card UUID. Offline a panel can check only what its readers saw:
a PKI signature over its challenge with the certificate the key names (no path
validation, no revocation beyond the cache itself), a PIN the card accepted, a biometric
match. A CHUID or badge read identifies the card and counts as no factor.

The cache is as current as the last word the panel heard from accessd (deltas follow every
change within seconds while it hears). Past the snapshot's ``max_age_seconds`` without
one, a revocation may be missing: no entry is trusted, every card is refused as the door's
offline rule refuses an unknown one, and the panel raises a ``cache_stale`` alarm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.mqtt.messages import (
    CacheEntry,
    CredDelta,
    CredentialRef,
    CredSnapshot,
    OfflineDoor,
    OfflineSchedule,
    Window,
)
from drivers.panel.errors import CacheOutOfStep

ALWAYS = "always"  # the schedule id of an entry with no time restriction

# Reasons an offline decision gives; accessd stores them with the event.
GRANTED = "offline_granted"
NO_CACHE = "offline_no_cache"
DOOR_NEEDS_ACCESSD = "offline_door_needs_accessd"
UNKNOWN_CREDENTIAL = "offline_unknown_credential"
NOT_THIS_DOOR = "offline_door_not_permitted"
EXPIRED = "offline_expired"
OUTSIDE_SCHEDULE = "offline_outside_schedule"
FACTORS_MISSING = "offline_factors_missing"
STALE = "offline_cache_stale"


@dataclass(frozen=True, slots=True)
class Verified:
    """What the panel's reader established itself about the card at the door.

    ``pki_cert_sha256`` is the SHA-256 (hex) of the certificate whose key signed the panel's
    challenge, checked by the panel; the cache then finds the entry by that fingerprint.
    """

    identifiers: tuple[CredentialRef, ...] = ()
    pki_cert_sha256: str | None = None
    pin: bool = False
    bio: bool = False

    @property
    def factors(self) -> int:
        """Authentication factors: have (PKI), know (PIN), are (BIO)."""
        return (self.pki_cert_sha256 is not None) + self.pin + self.bio


@dataclass(frozen=True, slots=True)
class OfflineDecision:
    granted: bool
    reason: str
    factors: int = 0
    required: int = 0


def credential_hash(salt: bytes, kind: str, value: str) -> str:
    """The cache key of an identifier: HMAC-SHA256(salt, "<kind>:<value>")[:16] in hex."""
    mac = hmac.new(salt, f"{kind}:{value}".encode(), hashlib.sha256)
    return mac.digest()[:16].hex()


def in_windows(windows: Iterable[Window], weekday: int, minute: int) -> bool:
    return any(w.day == weekday and w.start <= minute < w.end for w in windows)


def schedule_open(schedule: OfflineSchedule, local: datetime) -> bool:
    """Whether ``schedule`` admits the local time ``local``; a holiday uses its own windows."""
    windows = schedule.holiday_windows if local.date() in schedule.holidays else schedule.windows
    return in_windows(windows, local.weekday(), local.hour * 60 + local.minute)


class CredentialCache:
    """One panel's cache; empty until the first snapshot."""

    def __init__(self) -> None:
        self.version: int | None = None
        self._salt = b""
        self._zone: ZoneInfo | None = None
        self.doors: dict[str, OfflineDoor] = {}
        self.schedules: dict[str, OfflineSchedule] = {}
        self._entries: dict[str, CacheEntry] = {}
        self.max_age: timedelta | None = None
        #: When the panel last heard from accessd (its clock), or the snapshot's making.
        self.heard_at: datetime | None = None
        self._alarm_due = False
        self._alarmed = False  # in this stale spell

    def heard(self, at: datetime) -> None:
        """accessd reached the panel at ``at``: the cache is current as of then."""
        if self.heard_at is None or at > self.heard_at:
            self.heard_at = at
        self._alarm_due = self._alarmed = False

    def stale(self, now: datetime) -> bool:
        """Older than the max age: trusted no more."""
        if self.max_age is None or self.version is None:
            return False
        return self.heard_at is None or now - self.heard_at > self.max_age

    def take_alarm(self) -> bool:
        """True once per stale spell, after the first decision it refused: raise the alarm."""
        due, self._alarm_due = self._alarm_due, False
        return due

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # no salt, no hashes
        return f"CredentialCache(version={self.version}, entries={len(self._entries)})"

    def apply_snapshot(self, snapshot: CredSnapshot) -> None:
        """Replace the whole cache; ValueError (nothing changed) for an unknown timezone."""
        try:
            zone = ZoneInfo(snapshot.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {snapshot.timezone!r}") from exc
        self._salt = base64.b64decode(snapshot.salt)
        self._zone = zone
        self.doors = dict(snapshot.doors)
        self.schedules = dict(snapshot.schedules)
        self._entries = {e.h: e for e in snapshot.entries}
        self.version = snapshot.version
        self.max_age = (
            timedelta(seconds=snapshot.max_age_seconds) if snapshot.max_age_seconds else None
        )
        # A retained snapshot may be old: its making is the least it is current as of.
        if self.heard_at is None or snapshot.generated_at > self.heard_at:
            self.heard_at = snapshot.generated_at

    def apply_delta(self, delta: CredDelta) -> None:
        """Apply the next delta; CacheOutOfStep (nothing changed) unless it follows ours."""
        if self.version is None or delta.from_version != self.version:
            raise CacheOutOfStep(self.version, delta.from_version)
        for h in delta.remove:
            self._entries.pop(h, None)
        for entry in delta.upsert:
            self._entries[entry.h] = entry
        if delta.doors is not None:
            self.doors = dict(delta.doors)
        if delta.schedules is not None:
            self.schedules = dict(delta.schedules)
        self.version = delta.version

    def lookup(self, ref: CredentialRef) -> CacheEntry | None:
        if self.version is None:
            return None
        return self._entries.get(credential_hash(self._salt, ref.kind, ref.value))

    def decide(self, door: int, seen: Verified, now: datetime) -> OfflineDecision:
        """Decide at ``door`` from the cache alone; fails closed on anything it cannot tell."""
        if self.version is None or self._zone is None:
            return OfflineDecision(False, NO_CACHE)
        rule = self.doors.get(str(door))
        if rule is None or not rule.offline_allowed:
            return OfflineDecision(False, DOOR_NEEDS_ACCESSD)
        if self.stale(now):
            if not self._alarmed:
                self._alarmed = self._alarm_due = True
            return OfflineDecision(False, STALE, 0, rule.factors)
        entry, factors = self._find(seen)
        if entry is None:
            return OfflineDecision(False, UNKNOWN_CREDENTIAL, 0, rule.factors)
        schedule_id = entry.doors.get(str(door))
        if schedule_id is None:
            return OfflineDecision(False, NOT_THIS_DOOR, factors, rule.factors)
        local = now.astimezone(self._zone)
        if local.date() > entry.valid_until:
            return OfflineDecision(False, EXPIRED, factors, rule.factors)
        if schedule_id != ALWAYS:
            schedule = self.schedules.get(schedule_id)
            # A schedule the snapshot does not carry cannot be checked: closed.
            if schedule is None or not schedule_open(schedule, local):
                return OfflineDecision(False, OUTSIDE_SCHEDULE, factors, rule.factors)
        if factors < rule.factors:
            return OfflineDecision(False, FACTORS_MISSING, factors, rule.factors)
        return OfflineDecision(True, GRANTED, factors, rule.factors)

    def _find(self, seen: Verified) -> tuple[CacheEntry | None, int]:
        """The entry and the factors that count for it: the PKI factor only when the
        entry is the one of the certificate that signed."""
        if seen.pki_cert_sha256 is not None:
            entry = self.lookup(CredentialRef(kind="cert_sha256", value=seen.pki_cert_sha256))
            if entry is not None:
                return entry, seen.factors
        for ref in seen.identifiers:
            entry = self.lookup(ref)
            if entry is not None:
                return entry, seen.factors - (seen.pki_cert_sha256 is not None)
        return None, 0
