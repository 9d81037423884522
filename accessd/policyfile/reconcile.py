"""Making the database match a policy file: read the site the database holds, diff it with
the file's, write the difference (create, update, delete by natural key), one audit entry
per change, all in the caller's transaction so any error leaves nothing applied."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
from accessd.events import PolicyChanged, stage
from accessd.models import Person
from accessd.policyfile.document import PolicyDocument
from accessd.policyfile.findings import Finding, Path, PolicyRejected
from accessd.policyfile.loader import PolicyFile
from accessd.policyfile.site import SiteDiff, diff, from_document
from accessd.policyfile.stored import load
from accessd.policyfile.writer import Writer
from accessd.services import audit

_CHUNK = 500
#: Above this many people named, all are read at once.
_ALL_AT_ONCE = 5_000
#: PostgreSQL advisory lock key for applying policy ("acpf" in ASCII).
_LOCK_KEY = 0x61637066
_VERB = {"added": "create", "changed": "update", "removed": "delete"}


async def reconcile(session: AsyncSession, actor: str, policy: PolicyFile) -> SiteDiff:
    """Brings the database to the policy file's site; returns what changed (empty: nothing
    was written). Raises PolicyRejected for a file with errors or unknown people and
    PolicyConflict for a record that cannot be deleted; the caller rolls back."""
    doc = policy.document
    if doc is None or policy.errors:
        raise PolicyRejected(policy.source, policy.findings)
    named = _people_in(doc)
    people = await _person_ids(session, {ext for ext, _ in named})
    unknown = _unknown(policy, named, people)
    if unknown:
        raise PolicyRejected(policy.source, unknown)
    await _serialise(session)
    wanted = from_document(doc)
    current, rows = await load(session)
    changes = diff(current, wanted)
    if not changes:
        return changes
    ids = await Writer(session, rows, wanted, changes, people).write()
    for change in changes.changes:
        await audit.record(
            session,
            actor=actor,
            action=f"{change.entity}.{_VERB[change.action]}",
            entity=change.entity,
            entity_id=ids.get((change.entity, change.key), ""),
            data={"change": str(change), "policy_file": policy.source},
        )
    stage(session, PolicyChanged("all"))
    return changes


async def _serialise(session: AsyncSession) -> None:
    """Holds off a second apply until this transaction ends: each would otherwise diff
    against a database the other is changing. SQLite's BEGIN IMMEDIATE does this already."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


async def unknown_people(session: AsyncSession, policy: PolicyFile) -> list[Finding]:
    """Group members and people granted levels whose external_id names nobody, by line."""
    if policy.document is None:
        return []
    named = _people_in(policy.document)
    return _unknown(policy, named, await _person_ids(session, {ext for ext, _ in named}))


def _people_in(doc: PolicyDocument) -> list[tuple[str, Path]]:
    """Every external_id the document names, with where."""
    members: list[tuple[str, Path]] = [
        (ext, ("groups", i, "members", j))
        for i, g in enumerate(doc.groups)
        for j, ext in enumerate(g.members)
    ]
    return members + [
        (ext, ("access_levels", i, "people", j))
        for i, lvl in enumerate(doc.access_levels)
        for j, ext in enumerate(lvl.people)
    ]


def _unknown(
    policy: PolicyFile, named: list[tuple[str, Path]], known: dict[str, int]
) -> list[Finding]:
    return [
        policy.lines.finding(path, f"no person has external_id {ext!r}")
        for ext, path in named
        if ext not in known
    ]


async def _person_ids(session: AsyncSession, external_ids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(external_ids))
    found: dict[str, int] = {}
    if len(wanted) > _ALL_AT_ONCE:
        # Cheaper to read everyone once than to send hundreds of IN lists.
        named = set(wanted)
        people = await bulk.fetch_all(session, select(Person.external_id, Person.id))
        return {ext: pid for ext, pid in people if ext in named}
    for i in range(0, len(wanted), _CHUNK):
        rows = await session.execute(
            select(Person.external_id, Person.id).where(
                Person.external_id.in_(wanted[i : i + _CHUNK])
            )
        )
        found.update({ext: pid for ext, pid in rows if ext is not None})
    return found
