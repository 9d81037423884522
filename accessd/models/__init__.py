"""ORM models. Importing this package registers every table on `Base.metadata`."""

from accessd.db.base import Base
from accessd.models.audit import AuditEntry, AuditHead
from accessd.models.credentials import Credential, CredentialCertificate, CredentialTransition
from accessd.models.facilities import Area, Door, Facility, Panel, Reader
from accessd.models.operators import ApiToken, Operator
from accessd.models.people import Person, SecurityRecord, VettingAlert

__all__ = [
    "ApiToken",
    "Area",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Credential",
    "CredentialCertificate",
    "CredentialTransition",
    "Door",
    "Facility",
    "Operator",
    "Panel",
    "Person",
    "Reader",
    "SecurityRecord",
    "VettingAlert",
]
