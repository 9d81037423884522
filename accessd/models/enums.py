"""Enumerations of the personnel, facility and operator domain. Those the decision logic
shares live in `policies` (lifecycle, vocabulary) and are re-exported here."""

from __future__ import annotations

import enum

from policies.lifecycle import Adjudication, CredentialKind, CredentialState
from policies.vocabulary import (
    Affiliation,
    AntiPassback,
    AreaClass,
    DoorMode,
    Eligibility,
    ThreatLevel,
)

__all__ = [
    "Adjudication",
    "Affiliation",
    "AlertStatus",
    "AntiPassback",
    "AreaClass",
    "CredentialKind",
    "CredentialState",
    "DoorMode",
    "Eligibility",
    "Entity",
    "InvestigationTier",
    "PanelTransport",
    "PersonStatus",
    "ReaderDirection",
    "Role",
    "ThreatLevel",
]


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    SEPARATED = "separated"


class InvestigationTier(enum.StrEnum):
    """Federal Investigative Standards tiers (Tier 1 low risk … Tier 5 TS/SCI)."""

    NONE = "none"
    TIER1 = "tier1"
    TIER2 = "tier2"
    TIER3 = "tier3"
    TIER4 = "tier4"
    TIER5 = "tier5"


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    CLEARED = "cleared"
    UPHELD = "upheld"


class ReaderDirection(enum.StrEnum):
    IN = "in"
    OUT = "out"


class PanelTransport(enum.StrEnum):
    MQTT = "mqtt"
    OSDP = "osdp"


class Role(enum.StrEnum):
    SPONSOR = "sponsor"
    REGISTRAR = "registrar"
    ADJUDICATOR = "adjudicator"
    ISSUER = "issuer"
    SECURITY_OFFICER = "security_officer"
    FACILITY_MANAGER = "facility_manager"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: A device (IP reader, panel) that asks for access decisions.
    DOOR_READER = "door_reader"


class Entity(enum.StrEnum):
    """The kinds of record the audit log names (`AuditEntry.entity`).

    The decision service's change feed and policy-file reconciliation match on these, and
    a test checks that the feed classifies every member, so a new kind cannot be missed."""

    FACILITY = "facility"
    AREA = "area"
    PANEL = "panel"
    DOOR = "door"
    READER = "reader"
    SCHEDULE = "schedule"
    HOLIDAY_CALENDAR = "holiday_calendar"
    GROUP = "group"
    ACCESS_LEVEL = "access_level"
    #: A policy file applied as a whole (its version row).
    POLICY = "policy"
    PERSON = "person"
    CREDENTIAL = "credential"
    OPERATOR = "operator"
    #: Where the anti-passback rules think a person is (forgiven by an officer).
    PRESENCE = "presence"
