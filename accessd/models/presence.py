"""Where people are, shared by every instance: the log of what decisions did to presence."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from accessd.db.base import Base, UTCDateTime, utcnow


class PresenceChange(Base):
    """One `policies.presence.Change`, as the instance that decided it wrote it. Each
    instance applies the others' rows to its own in-memory view, and a starting one
    replays the recent rows: anti-passback, occupancy, two-person and escort waits and
    first-person-in hold across instances and restarts."""

    __tablename__ = "presence_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: The instance that decided it (its own rows it has applied already).
    instance: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: When written: a reader that polls by id re-reads a recent window, as ids are handed
    #: out before commit and a later one may commit first.
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    person_id: Mapped[int] = mapped_column(Integer)
    door_id: Mapped[int | None] = mapped_column(Integer)
    area_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    companions: Mapped[list[int]] = mapped_column(JSON, default=list)
    may_escort: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_free_access: Mapped[bool] = mapped_column(Boolean, default=False)
    local_day: Mapped[date | None] = mapped_column(Date)
    forgiven: Mapped[bool] = mapped_column(Boolean, default=False)
