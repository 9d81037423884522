"""People and their personnel-security records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accessd.db.base import Base, UTCDateTime, Versioned, utcnow
from accessd.models.enums import (
    Adjudication,
    Affiliation,
    AlertStatus,
    Eligibility,
    InvestigationTier,
    PersonStatus,
)


class Person(Versioned, Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The HR or sponsor system's identifier; what bulk imports match on.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    affiliation: Mapped[Affiliation] = mapped_column(String(24))
    organization: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[PersonStatus] = mapped_column(String(16), default=PersonStatus.ACTIVE)

    security: Mapped[SecurityRecord] = relationship(
        back_populates="person", uselist=False, lazy="raise"
    )

    __table_args__ = (Index("ix_people_family_name", "family_name"),)


class SecurityRecord(Versioned, Base):
    """One per person: investigation, adjudication, eligibility and continuous vetting."""

    __tablename__ = "security_records"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    investigation_tier: Mapped[InvestigationTier] = mapped_column(
        String(8), default=InvestigationTier.NONE
    )
    investigation_opened: Mapped[date | None] = mapped_column(Date)
    investigation_closed: Mapped[date | None] = mapped_column(Date)
    adjudication: Mapped[Adjudication] = mapped_column(String(16), default=Adjudication.PENDING)
    adjudicated_on: Mapped[date | None] = mapped_column(Date)
    eligibility: Mapped[Eligibility] = mapped_column(String(16), default=Eligibility.NONE)
    #: True while an open continuous-vetting alert suspends eligibility.
    eligibility_suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    reinvestigation_due: Mapped[date | None] = mapped_column(Date)
    cv_enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    cv_enrolled_on: Mapped[date | None] = mapped_column(Date)

    person: Mapped[Person] = relationship(back_populates="security", lazy="raise")


class VettingAlert(Base):
    """A continuous-vetting alert; one that suspends eligibility suspends the credentials."""

    __tablename__ = "vetting_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    suspends_eligibility: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[AlertStatus] = mapped_column(String(16), default=AlertStatus.OPEN)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_by: Mapped[int] = mapped_column(ForeignKey("operators.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
