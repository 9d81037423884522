"""What door panels reported (card reads, door position, alarms, …), each event stored once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from accessd.db.base import Base, UTCDateTime, utcnow

#: Event types that are alarms: an operator must look at them.
ALARM_TYPES = frozenset(
    {
        "forced",
        "held",
        "tamper",
        "power",
        "reader_offline",
        "panel_offline",
        "spoofed",
        "error",
        "cache_stale",
    }
)


class PanelEvent(Base):
    """One event from a panel (``source`` panel) or about it (``source`` accessd: went
    offline, sent something malformed or not its own). A panel's ``event_id`` is unique per
    panel, so an event replayed after an outage is not stored twice."""

    __tablename__ = "panel_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("panels.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    #: The panel's own clock (buffered events arrive long after).
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(24))
    door_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reader_id: Mapped[int | None] = mapped_column(Integer)
    alarm: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(8), default="panel")

    __table_args__ = (
        UniqueConstraint("panel_id", "event_id"),
        Index("ix_panel_events_panel_seq", "panel_id", "seq"),
    )
