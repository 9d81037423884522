"""Door access policy: schedules, holiday calendars, groups, access levels, program read-ins,
the versions of applied policy files, and the decisions made."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from accessd.db.base import Base, UTCDateTime, Versioned, utcnow


class Schedule(Versioned, Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: Seven lists (Monday first) of [start, end) minute intervals in local time.
    week: Mapped[list[list[list[int]]]] = mapped_column(JSON)
    #: Intervals on holidays of its calendars (empty: closed on holidays).
    holiday: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    calendar_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class HolidayCalendar(Versioned, Base):
    __tablename__ = "holiday_calendars"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class Holiday(Base):
    __tablename__ = "holidays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("holiday_calendars.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(100), default="")

    __table_args__ = (UniqueConstraint("calendar_id", "day"),)


class PersonGroup(Versioned, Base):
    __tablename__ = "person_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(400), default="")


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("person_groups.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_group_members_person", "person_id"),)


class AccessLevel(Versioned, Base):
    __tablename__ = "access_levels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: None: always.
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="RESTRICT"))
    description: Mapped[str] = mapped_column(String(400), default="")


class AccessLevelDoor(Base):
    __tablename__ = "access_level_doors"

    level_id: Mapped[int] = mapped_column(
        ForeignKey("access_levels.id", ondelete="CASCADE"), primary_key=True
    )
    door_id: Mapped[int] = mapped_column(
        ForeignKey("doors.id", ondelete="CASCADE"), primary_key=True
    )


class AccessGrant(Base):
    """An access level granted to a person or to a group (exactly one of the two)."""

    __tablename__ = "access_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level_id: Mapped[int] = mapped_column(
        ForeignKey("access_levels.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("person_groups.id", ondelete="CASCADE"), index=True
    )

    __table_args__ = (UniqueConstraint("level_id", "person_id", "group_id"),)


class ProgramReadIn(Base):
    """A person read into a compartmented program (needed by clearance-gated areas)."""

    __tablename__ = "program_read_ins"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    program: Mapped[str] = mapped_column(String(64), primary_key=True)
    read_in_on: Mapped[date] = mapped_column(Date, default=lambda: utcnow().date())


class PolicyVersion(Base):
    """A site policy file as applied: the document, who applied it, and what changed."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(400))
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    #: The version this one rolled back to, when it is a rollback.
    rollback_of: Mapped[int | None] = mapped_column(Integer)


class DecisionEvent(Base):
    """Every access decision and its reason, as an event."""

    __tablename__ = "decision_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reader_id: Mapped[int | None] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(Integer, index=True)
    person_id: Mapped[int | None] = mapped_column(Integer, index=True)
    credential_id: Mapped[int | None] = mapped_column(Integer)
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))
    required: Mapped[list[str]] = mapped_column(JSON, default=list)
    violation: Mapped[str | None] = mapped_column(String(32))
    trail: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Which transport asked: api, mqtt, osdp.
    source: Mapped[str] = mapped_column(String(16), default="api")
    #: The panel's request id, which its access event names (MQTT requests only).
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Whether the door acted on this decision, from the panel's access event naming the
    #: request: False when the panel gave up waiting and decided offline (the answer came
    #: after its timeout); None while no such event has arrived (or none will: the API).
    used: Mapped[bool | None] = mapped_column(Boolean)


class DecisionBatch(Base):
    """A batch of decision rows the store committed, by the token it wrote with them: a
    write whose commit was not acknowledged (the connection dropped, the wait timed out)
    is looked up before it is written again, so no decision is stored twice
    (accessd.decisions.store). Kept a day."""

    __tablename__ = "decision_batches"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class CacheLeadership(Base):
    """The panels' cache publisher's last heartbeat (accessd.gateway.leader): one row, or
    none before the first term. NULL after a clean stop: nobody is left publishing."""

    __tablename__ = "cache_leadership"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    beat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
