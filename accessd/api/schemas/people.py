from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Input, Public, Update, VersionedPublic
from accessd.fields import Email, ExternalId, Name, Organization
from accessd.models.enums import (
    Adjudication,
    Affiliation,
    AlertStatus,
    Eligibility,
    InvestigationTier,
    PersonStatus,
)


class SecurityFields(Update):
    nullable = frozenset(
        {
            "investigation_opened",
            "investigation_closed",
            "adjudicated_on",
            "reinvestigation_due",
            "cv_enrolled_on",
        }
    )

    investigation_tier: InvestigationTier | None = None
    investigation_opened: date | None = None
    investigation_closed: date | None = None
    adjudication: Adjudication | None = None
    adjudicated_on: date | None = None
    eligibility: Eligibility | None = None
    reinvestigation_due: date | None = None
    cv_enrolled: bool | None = None
    cv_enrolled_on: date | None = None


class PersonCreate(Input):
    external_id: ExternalId | None = None
    given_name: Name
    family_name: Name
    email: Email | None = None
    affiliation: Affiliation
    organization: Organization = ""


class PersonUpdate(Update):
    nullable = frozenset({"external_id", "email"})

    external_id: ExternalId | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    email: Email | None = None
    affiliation: Affiliation | None = None
    organization: Organization | None = None
    status: PersonStatus | None = None


class PersonPublic(VersionedPublic):
    external_id: str | None
    given_name: str
    family_name: str
    email: str | None
    affiliation: Affiliation
    organization: str
    status: PersonStatus


class SecurityPublic(Public):
    person_id: int
    version: int
    investigation_tier: InvestigationTier
    investigation_opened: date | None
    investigation_closed: date | None
    adjudication: Adjudication
    adjudicated_on: date | None
    eligibility: Eligibility
    eligibility_suspended: bool
    reinvestigation_due: date | None
    cv_enrolled: bool
    cv_enrolled_on: date | None
    updated_at: datetime


class AlertCreate(Input):
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    suspends_eligibility: bool = Field(
        description="An alert that suspends eligibility suspends every credential at once."
    )


class AlertResolve(Input):
    upheld: bool
    resolution: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ]


class AlertPublic(Public):
    id: int
    person_id: int
    source: str
    category: str
    description: str
    suspends_eligibility: bool
    status: AlertStatus
    received_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class AlertRaised(AlertPublic):
    suspended_credential_ids: list[int]
