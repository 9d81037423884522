"""Before a policy is applied: which people gain or lose access to which areas.

In one transaction the decision snapshot is loaded, the policy applied (the same reconcile
`apply` runs, so the answer is about exactly what would be written), the snapshot loaded
again, and everything rolled back; `policies.reach` compares the two snapshots.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.decisions.loader import load_snapshot
from accessd.models import Person
from accessd.policyfile.findings import PolicyRejected
from accessd.policyfile.loader import PolicyFile
from accessd.policyfile.reconcile import reconcile
from accessd.policyfile.site import SiteDiff
from policies.reach import NOT_WEIGHED, ReachChange, compare

_CHUNK = 500
#: Above this many people, one query for everyone is cheaper than chunks of ids.
_ALL_AT_ONCE = 20_000


@dataclass(frozen=True, slots=True)
class PersonRef:
    id: int
    external_id: str | None
    name: str

    def __str__(self) -> str:
        ref = self.external_id if self.external_id is not None else f"#{self.id}"
        return f"{ref} {self.name}".strip()


@dataclass(frozen=True, slots=True)
class AreaAccess:
    person: PersonRef
    #: `FACILITY/Area name`.
    area: str


@dataclass
class AccessImpact:
    """Who gains and who loses which area, people named; `note` says what is not weighed."""

    gained: list[AreaAccess] = field(default_factory=list)
    lost: list[AreaAccess] = field(default_factory=list)
    #: How many people gain or lose anything.
    people: int = 0
    note: str = NOT_WEIGHED

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)

    def lines(self) -> list[str]:
        """`+ E1003 Casey Lindqvist: HQ/SCIF` and `- …`, by person, gains first."""
        signed = [("+", a) for a in self.gained] + [("-", a) for a in self.lost]
        signed.sort(key=lambda s: (_order(s[1].person), s[0] != "+", s[1].area))
        return [f"{sign} {a.person}: {a.area}" for sign, a in signed]

    def summary(self) -> str:
        """`access impact: 4 gained, 1 lost, 3 people; at any time of day: …`."""
        who = "person" if self.people == 1 else "people"
        return (
            f"access impact: {len(self.gained)} gained, {len(self.lost)} lost, "
            f"{self.people} {who}; {self.note}"
        )


def _order(person: PersonRef) -> tuple[str, int]:
    return (person.external_id or "", person.id)


@dataclass
class Preview:
    """What applying a policy would change in the records, and in who can go where."""

    changes: SiteDiff
    impact: AccessImpact


async def preview(session: AsyncSession, policy: PolicyFile, *, actor: str) -> Preview:
    """Applies `policy` in `session`'s transaction, measures the access impact and rolls
    the transaction back (so give it a session of its own). Raises as `apply` does."""
    if policy.document is None or policy.errors:
        raise PolicyRejected(policy.source, policy.findings)
    try:
        before = await load_snapshot(session)
        changes = await reconcile(session, actor, policy)
        if not changes:
            return Preview(changes, AccessImpact())
        await session.flush()
        after = await load_snapshot(session)
    finally:
        await session.rollback()
    return Preview(changes, await named(session, compare(before, after)))


async def impact(session: AsyncSession, policy: PolicyFile, *, actor: str) -> AccessImpact:
    """Who would gain or lose which area if `policy` were applied; nothing is written."""
    return (await preview(session, policy, actor=actor)).impact


async def named(session: AsyncSession, change: ReachChange) -> AccessImpact:
    """The change with its people named (external_id, given and family name)."""
    people = await _people(session, change.people)

    def ref(pid: int) -> PersonRef:
        return people.get(pid) or PersonRef(pid, None, "")

    return AccessImpact(
        gained=[AreaAccess(ref(pid), area) for pid, area in change.gained],
        lost=[AreaAccess(ref(pid), area) for pid, area in change.lost],
        people=len(change.people),
    )


async def _people(session: AsyncSession, ids: set[int]) -> dict[int, PersonRef]:
    columns = select(Person.id, Person.external_id, Person.given_name, Person.family_name)
    if len(ids) > _ALL_AT_ONCE:
        batches = [columns]
    else:
        wanted = sorted(ids)
        batches = [
            columns.where(Person.id.in_(wanted[i : i + _CHUNK]))
            for i in range(0, len(wanted), _CHUNK)
        ]
    out: dict[int, PersonRef] = {}
    for stmt in batches:
        for pid, ext, given, family in await session.execute(stmt):
            if pid in ids:
                out[pid] = PersonRef(pid, ext, f"{given} {family}".strip())
    return out
