"""An access request as a reader sends it, and the explained decision the engine returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from policies.vocabulary import Direction, Mechanism

#: One line of a decision's explanation: a str.format template and its arguments.
Step = tuple[Any, ...]


class Reason(enum.StrEnum):
    GRANTED = "granted"
    GRANTED_FREE_ACCESS = "granted_free_access"
    UNKNOWN_READER = "unknown_reader"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    CREDENTIAL_NOT_ACTIVE = "credential_not_active"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_NOT_YET_VALID = "credential_not_yet_valid"
    PERSON_INACTIVE = "person_inactive"
    ELIGIBILITY_SUSPENDED = "eligibility_suspended"
    DOOR_LOCKED = "door_locked"
    DOOR_LOCKDOWN = "door_lockdown"
    THREAT_LEVEL_RESTRICTED = "threat_level_restricted"
    NO_ACCESS_LEVEL = "no_access_level"
    OUTSIDE_SCHEDULE = "outside_schedule"
    INSUFFICIENT_CLEARANCE = "insufficient_clearance"
    NOT_READ_IN = "not_read_in"
    FACTORS_MISSING = "factors_missing"
    OCCUPANCY_FULL = "occupancy_full"
    ANTI_PASSBACK = "anti_passback"
    AWAITING_ESCORT = "awaiting_escort"
    AWAITING_SECOND_PERSON = "awaiting_second_person"
    #: A challenge-response, its certificate or a signed biometric result was refused.
    AUTHENTICATION_FAILED = "authentication_failed"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    reader_id: int
    at: datetime
    #: How the credential was identified: an IdKind and its value.
    id_kind: str
    id_value: str
    evidence: frozenset[Mechanism] = frozenset()
    #: Set when the reader presented proofs that did not verify: why, in words (the code
    #: first). The decision is then a denial, whatever else the request says.
    authn_failure: str | None = None
    #: Set when proofs verified: what they established, in words (mechanisms, certificate
    #: and the revocation source really used), for the decision's trail.
    authn_proven: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: Reason
    #: What is still needed: "card_authentication", "pin", "biometric", "escort",
    #: "second_person".
    required: tuple[str, ...] = ()
    unlock_seconds: int = 0
    #: The rules that decided, in the order they were checked, as (format, *arguments):
    #: formatted only when someone reads `trail`, which most decisions never need.
    steps: tuple[Step, ...] = ()
    reader_id: int | None = None
    door_id: int | None = None
    #: The area the person would enter (None: the outside).
    area_id: int | None = None
    direction: Direction = Direction.IN
    person_id: int | None = None
    credential_id: int | None = None
    #: A soft rule was broken but access granted (soft anti-passback).
    violation: str | None = None
    #: People who pass with this grant besides the requester (escorted visitor, first of
    #: two persons).
    companions: tuple[int, ...] = ()
    #: This grant opened a first-person-in door for the rest of its unlock schedule.
    starts_free_access: bool = False
    #: The person may escort a visitor who badges at this door within the window.
    may_escort: bool = False
    at: datetime | None = field(default=None, compare=False)

    @property
    def trail(self) -> tuple[str, ...]:
        """The rules that decided, in words."""
        return tuple(fmt.format(*args) for fmt, *args in self.steps)
