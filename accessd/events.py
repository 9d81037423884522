"""The in-process event bus: lifecycle changes that decision caches and panels follow.

Events are staged on the database session and published only after its transaction
commits, so a subscriber never sees a change that was rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from accessd.db.base import utcnow
from drivers.listeners import Listeners

log = logging.getLogger(__name__)

_STAGED = "accessd.staged_events"
_BUS = "accessd.event_bus"
_MARKS = "accessd.savepoint_marks"


@dataclass(frozen=True, slots=True)
class CredentialStateChanged:
    credential_id: int
    person_id: int
    from_state: str | None
    to_state: str
    #: Whether the credential may still open doors after the change.
    usable: bool
    reason: str
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class CredentialsRevoked:
    """Every listed credential of a person stopped being usable at once (vetting, adjudication)."""

    person_id: int
    credential_ids: tuple[int, ...]
    reason: str
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class PersonChanged:
    person_id: int
    fields: tuple[str, ...]
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class PeopleImported:
    """A bulk import added these people and credentials (caches rebuild rather than patch)."""

    person_ids: tuple[int, ...]
    credential_ids: tuple[int, ...]
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """Door policy changed (a policy file applied, a level, schedule or group edited, a threat
    level set): decision caches reload what `scope` names ("all", "threat", "levels", …)."""

    scope: str
    facility_id: int | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ThreatLevelChanged:
    """A facility's threat level changed: decisions use it from the next request on."""

    facility_id: int
    level: str
    at: datetime = field(default_factory=utcnow)


DomainEvent = (
    CredentialStateChanged
    | CredentialsRevoked
    | PersonChanged
    | PeopleImported
    | PolicyChanged
    | ThreatLevelChanged
)
Handler = Callable[[DomainEvent], None]


class EventBus:
    """Synchronous fan-out on the event loop thread; a failing subscriber is logged, not fatal."""

    def __init__(self) -> None:
        self._handlers: Listeners[[DomainEvent]] = Listeners("domain event", logger=log)
        self.published = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Adds a subscriber; returns a function that removes it (safe to call twice)."""
        return self._handlers.add(handler)

    def publish(self, ev: DomainEvent) -> None:
        self.published += 1
        self._handlers.emit(ev)


def session_info(bus: EventBus) -> dict[str, Any]:
    """`info` for a sessionmaker whose sessions publish to `bus` after commit."""
    return {_BUS: bus}


def stage(session: Session | AsyncSession, ev: DomainEvent) -> None:
    """Queues `ev` to be published when `session` commits (dropped on rollback)."""
    session.info.setdefault(_STAGED, []).append(ev)


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    staged: list[DomainEvent] = session.info.pop(_STAGED, [])
    session.info.pop(_MARKS, None)
    bus: EventBus | None = session.info.get(_BUS)
    if bus is None:
        return
    for ev in staged:
        bus.publish(ev)


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint remembers how many events were staged before it, to drop only its own.
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_STAGED, ()))


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        mark = session.info.get(_MARKS, {}).pop(id(previous_transaction), None)
        staged = session.info.get(_STAGED)
        if mark is not None and staged is not None:
            del staged[mark:]
        return
    session.info.pop(_STAGED, None)
    session.info.pop(_MARKS, None)
