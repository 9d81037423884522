"""Errors of the panel logic; every one derives from `drivers.errors.DriverError`.

PanelError
├── LinkDown        the broker link is not connected, or dropped before the PUBACK
├── CacheOutOfStep  a credential delta that does not follow the cache's version
└── EventStoreError the panel's event store cannot be opened or written
"""

from __future__ import annotations

from drivers.errors import DriverError


class PanelError(DriverError):
    """Base class of the errors raised by `drivers.panel`."""


class LinkDown(PanelError):
    """The link to the broker is down; nothing was (or is known to be) delivered."""


class CacheOutOfStep(PanelError):
    """A delta from another version than the cache holds; ask for a snapshot."""

    def __init__(self, have: int | None, delta_from: int) -> None:
        self.have = have
        self.delta_from = delta_from
        super().__init__(f"cache at version {have}, delta from {delta_from}")


class EventStoreError(PanelError):
    """The on-disk event buffer failed (sqlite3 error, unreadable row)."""
