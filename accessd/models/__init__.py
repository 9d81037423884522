"""ORM models. Importing this package registers every table on `Base.metadata`."""

from accessd.db.base import Base
from accessd.models.audit import AuditEntry, AuditHead
from accessd.models.credentials import Credential, CredentialCertificate, CredentialTransition
from accessd.models.facilities import Area, Door, Facility, Panel, Reader
from accessd.models.operators import ApiToken, Operator
from accessd.models.panel_events import PanelEvent
from accessd.models.people import Person, SecurityRecord, VettingAlert
from accessd.models.policy import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    CacheLeadership,
    DecisionBatch,
    DecisionEvent,
    GroupMember,
    Holiday,
    HolidayCalendar,
    PersonGroup,
    PolicyVersion,
    ProgramReadIn,
    Schedule,
)
from accessd.models.presence import PresenceChange

__all__ = [
    "AccessGrant",
    "AccessLevel",
    "AccessLevelDoor",
    "ApiToken",
    "Area",
    "AuditEntry",
    "AuditHead",
    "Base",
    "CacheLeadership",
    "Credential",
    "CredentialCertificate",
    "CredentialTransition",
    "DecisionBatch",
    "DecisionEvent",
    "Door",
    "Facility",
    "GroupMember",
    "Holiday",
    "HolidayCalendar",
    "Operator",
    "Panel",
    "PanelEvent",
    "Person",
    "PersonGroup",
    "PolicyVersion",
    "PresenceChange",
    "ProgramReadIn",
    "Reader",
    "Schedule",
    "SecurityRecord",
    "VettingAlert",
]
