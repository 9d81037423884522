"""Enumerations of the personnel, facility and operator domain (lifecycle ones live in
`policies.lifecycle`, which the decision logic shares)."""

from __future__ import annotations

import enum

from policies.lifecycle import Adjudication, CredentialKind, CredentialState

__all__ = [
    "Adjudication",
    "Affiliation",
    "AlertStatus",
    "AreaClass",
    "CredentialKind",
    "CredentialState",
    "Eligibility",
    "InvestigationTier",
    "PanelTransport",
    "PersonStatus",
    "ReaderDirection",
    "Role",
]


class Affiliation(enum.StrEnum):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"
    LAW_ENFORCEMENT = "law_enforcement"
    VISITOR = "visitor"


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


class Eligibility(enum.StrEnum):
    NONE = "none"
    SECRET = "secret"
    TOP_SECRET = "top_secret"
    TS_SCI = "ts_sci"


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    CLEARED = "cleared"
    UPHELD = "upheld"


class AreaClass(enum.StrEnum):
    """SP 800-116 Rev 1 security areas."""

    UNRESTRICTED = "unrestricted"
    CONTROLLED = "controlled"
    LIMITED = "limited"
    EXCLUSION = "exclusion"


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
