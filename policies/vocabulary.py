"""The words the decision rules and the service share: areas, eligibility, affiliations,
authentication mechanisms, door modes and threat levels."""

from __future__ import annotations

import enum


class Affiliation(enum.StrEnum):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"
    LAW_ENFORCEMENT = "law_enforcement"
    VISITOR = "visitor"


class Eligibility(enum.StrEnum):
    """Security-clearance eligibility, in increasing order."""

    NONE = "none"
    SECRET = "secret"
    TOP_SECRET = "top_secret"
    TS_SCI = "ts_sci"

    @property
    def rank(self) -> int:
        return _ELIGIBILITY_RANK[self]


_ELIGIBILITY_RANK = {e: i for i, e in enumerate(Eligibility)}


class AreaClass(enum.StrEnum):
    """SP 800-116 Rev 1 security areas."""

    UNRESTRICTED = "unrestricted"
    CONTROLLED = "controlled"
    LIMITED = "limited"
    EXCLUSION = "exclusion"


class Mechanism(enum.StrEnum):
    """Authentication evidence a reader or panel reports with a request (SP 800-116 Rev 1,
    FIPS 201-3). The reader vouches for each: a verified signature, a PIN the card checked,
    a signed biometric match."""

    #: CHUID read: identifies the card, authenticates nothing (FIPS 201-3 removed it).
    CHUID = "chuid"
    #: A local or legacy badge number (prox, Wiegand): identifies, authenticates nothing.
    BADGE = "badge"
    #: Card Authentication key (9E) challenge-response: something you have.
    PKI_CAK = "pki_cak"
    #: Secure-messaging key authentication: something you have.
    SM_AUTH = "sm_auth"
    #: PIV Authentication key (9A) challenge-response after the card verified the PIN:
    #: something you have and something you know.
    PKI_AUTH = "pki_auth"
    #: A PIN verified by the card (VERIFY) without a 9A signature.
    PIN = "pin"
    #: A biometric match, on the reader (BIO/BIO-A) or on the card (OCC): something you are.
    BIO = "bio"


class Factor(enum.StrEnum):
    HAVE = "card_authentication"
    KNOW = "pin"
    ARE = "biometric"


class DoorMode(enum.StrEnum):
    LOCKED = "locked"
    CARD_ONLY = "card_only"
    CARD_AND_PIN = "card_and_pin"
    #: Unlocked during its unlock schedule, card access (card_only rules) outside it.
    UNLOCKED_BY_SCHEDULE = "unlocked_by_schedule"
    #: As unlocked_by_schedule, but the schedule unlocks it only after an authorized person
    #: badges in during it (first person in).
    FIRST_PERSON_IN = "first_person_in"
    LOCKDOWN = "lockdown"


class ThreatLevel(enum.StrEnum):
    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGH = "high"
    LOCKDOWN = "lockdown"

    @property
    def rank(self) -> int:
        return _THREAT_RANK[self]


_THREAT_RANK = {t: i for i, t in enumerate(ThreatLevel)}


class AntiPassback(enum.StrEnum):
    NONE = "none"
    #: A violation is granted and reported.
    SOFT = "soft"
    #: A violation is denied.
    HARD = "hard"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"
