"""Credentials, their certificates and the record of every lifecycle transition."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accessd.db.base import Base, UTCDateTime, Versioned, utcnow
from accessd.models.enums import CredentialKind, CredentialState


class Credential(Versioned, Base):
    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[CredentialKind] = mapped_column(String(24))
    state: Mapped[CredentialState] = mapped_column(String(16), index=True)
    #: FASC-N as 50 hex digits of its 25 bytes; unique across all credentials.
    fasc_n: Mapped[str | None] = mapped_column(String(50), unique=True)
    card_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    badge_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    # Who did each step: the separation-of-duties rules compare these with the actor.
    sponsor_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    registrar_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    adjudicator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    issuer_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))

    certificates: Mapped[list[CredentialCertificate]] = relationship(
        back_populates="credential", lazy="selectin", cascade="all, delete-orphan"
    )


class CredentialCertificate(Base):
    """SHA-256 fingerprint of a certificate on the card, by PIV key reference (9A, 9E, …)."""

    __tablename__ = "credential_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True
    )
    slot: Mapped[str] = mapped_column(String(2))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)

    credential: Mapped[Credential] = relationship(back_populates="certificates", lazy="raise")

    __table_args__ = (UniqueConstraint("credential_id", "slot"),)


class CredentialTransition(Base):
    """Append-only history: who moved which credential from where to where, when and why."""

    __tablename__ = "credential_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[CredentialState | None] = mapped_column(String(16))
    to_state: Mapped[CredentialState] = mapped_column(String(16))
    #: None for transitions the system made itself (continuous-vetting suspension).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")
