"""Who is acting: an authenticated operator, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass

from accessd.auth.permissions import Permission, permissions_of
from accessd.errors import LifecycleRefused


@dataclass(frozen=True, slots=True)
class Actor:
    operator_id: int | None
    username: str
    roles: frozenset[str]
    person_id: int | None = None
    #: The readers a door_reader account serves (the only ones it may ask about); None for
    #: an actor that is no door_reader and so is bound to no reader.
    readers: frozenset[int] | None = None

    def may_use_reader(self, reader_id: int) -> bool:
        """Whether this actor may ask for decisions and challenges at ``reader_id``."""
        return self.readers is None or reader_id in self.readers

    @property
    def label(self) -> str:
        """How the audit log names this actor."""
        return f"operator:{self.username}" if self.operator_id is not None else self.username

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.roles)


#: Changes made by the service on its own (vetting-driven suspension, imports from the CLI
#: record the operator who ran them instead).
SYSTEM = Actor(operator_id=None, username="system", roles=frozenset())


def refuse_self_dealing(actor: Actor, person_id: int | None, what: str) -> None:
    """Separation of duties: nobody grants themselves access, clearance or forgiveness.

    ``what`` completes "an operator may not …" (e.g. "read themselves into a program")."""
    if person_id is not None and actor.person_id == person_id:
        raise LifecycleRefused(f"an operator may not {what}", code="self_dealing")
