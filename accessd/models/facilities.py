"""Facilities, their areas (SP 800-116 classes), doors, readers and panels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from accessd.db.base import Base, Versioned
from accessd.models.enums import (
    AntiPassback,
    AreaClass,
    DoorMode,
    Eligibility,
    PanelTransport,
    ReaderDirection,
    ThreatLevel,
)


class Facility(Versioned, Base):
    __tablename__ = "facilities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    #: ISC facility security level, 1 (I) to 5 (V).
    security_level: Mapped[int] = mapped_column(SmallInteger)
    address: Mapped[str] = mapped_column(String(400), default="")
    threat_level: Mapped[ThreatLevel] = mapped_column(String(16), default=ThreatLevel.NORMAL)
    #: {level: {"min_factors": n, "only_groups": [group names] | null}}; None: the defaults.
    threat_rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Area(Versioned, Base):
    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(
        ForeignKey("facilities.id", ondelete="RESTRICT"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    area_class: Mapped[AreaClass] = mapped_column(String(16))
    is_scif: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Clearance gate: eligibility the person must hold, programs they must be read into.
    min_eligibility: Mapped[Eligibility] = mapped_column(String(16), default=Eligibility.NONE)
    programs: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Two-person rule: seconds within which a second authorized person must badge; 0 = off.
    two_person_window_s: Mapped[int] = mapped_column(Integer, default=0)
    escort_required: Mapped[bool] = mapped_column(Boolean, default=True)
    escort_window_s: Mapped[int] = mapped_column(Integer, default=30)
    anti_passback: Mapped[AntiPassback] = mapped_column(String(8), default=AntiPassback.NONE)
    #: Seconds after which a person's location is forgotten (timed reset); 0 = never.
    apb_reset_s: Mapped[int] = mapped_column(Integer, default=0)
    occupancy_limit: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("facility_id", "name"),)


class Panel(Versioned, Base):
    __tablename__ = "panels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(
        ForeignKey("facilities.id", ondelete="RESTRICT"), index=True
    )
    #: The panel's name on the wire (MQTT topic segment, OSDP bus name).
    name: Mapped[str] = mapped_column(String(64))
    transport: Mapped[PanelTransport] = mapped_column(String(8))

    __table_args__ = (UniqueConstraint("facility_id", "name"),)


class Door(Versioned, Base):
    __tablename__ = "doors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The area this door leads into: its class decides what the door must demand.
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"), index=True)
    #: The area on the other side, None for the outside.
    from_area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("panels.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[DoorMode] = mapped_column(String(24), default=DoorMode.CARD_ONLY)
    unlock_schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="RESTRICT")
    )
    unlock_seconds: Mapped[int] = mapped_column(Integer, default=5)
    #: Mechanisms its readers can verify (pki_cak, pki_auth, bio, …): what the SP 800-116
    #: compliance check weighs against the area's class.
    accepts: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (UniqueConstraint("area_id", "name"),)


class Reader(Versioned, Base):
    __tablename__ = "readers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id", ondelete="RESTRICT"), index=True)
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("panels.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    direction: Mapped[ReaderDirection] = mapped_column(String(4))
    contact: Mapped[bool] = mapped_column(Boolean, default=False)
    contactless: Mapped[bool] = mapped_column(Boolean, default=True)
    pin_pad: Mapped[bool] = mapped_column(Boolean, default=False)
    biometric: Mapped[bool] = mapped_column(Boolean, default=False)
    #: OSDP bus address (0-126) when the reader hangs on an OSDP panel.
    osdp_address: Mapped[int | None] = mapped_column(SmallInteger)
    #: PEM public key the reader signs biometric match results with (None: no BIO factor
    #: is accepted from it).
    attestation_key: Mapped[str | None] = mapped_column(Text)
