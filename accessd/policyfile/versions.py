"""Applied policies as numbered versions: apply one (one file or several), list them, roll
back to one (which re-applies its files as a new version)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.errors import NotFound
from accessd.models import PolicyVersion
from accessd.models.enums import Entity
from accessd.policyfile.combine import parse_all, unpack
from accessd.policyfile.loader import PolicyFile, parse
from accessd.policyfile.reconcile import reconcile
from accessd.policyfile.site import SiteDiff
from accessd.services import audit

_SOURCE_MAX = 400


@dataclass(frozen=True, slots=True)
class Applied:
    changes: SiteDiff
    #: The new version; None when the file changed nothing (no version is recorded then).
    version: PolicyVersion | None


async def apply(
    session: AsyncSession,
    actor: str,
    policy: PolicyFile,
    *,
    comment: str = "",
    rollback_of: int | None = None,
) -> Applied:
    """Makes the database match `policy` and records it as a new version, in the caller's
    transaction (commit to keep it, roll back for a dry run)."""
    changes = await reconcile(session, actor, policy)
    if not changes:
        return Applied(changes, None)
    summary = changes.summary()
    row = PolicyVersion(
        actor=actor,
        source=policy.source[-_SOURCE_MAX:],
        document=policy.text,
        sha256=policy.sha256,
        changes=summary,
        comment=comment,
        rollback_of=rollback_of,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="policy.apply",
        entity=Entity.POLICY,
        entity_id=row.id,
        data={
            "source": row.source,
            "sha256": row.sha256,
            "rollback_of": rollback_of,
            **{action: len(items) for action, items in summary.items()},
        },
    )
    return Applied(changes, row)


async def stored(session: AsyncSession, version_id: int) -> PolicyFile:
    """The policy version `version_id` applied, read again: its one file, or its files
    under their own names (so a rollback keeps them apart, exactly as they were)."""
    old = await session.get(PolicyVersion, version_id)
    if old is None:
        raise NotFound(f"policy version {version_id} does not exist")
    source = f"version {version_id} ({old.source})"
    parts = unpack(old.document, source)
    if parts is None:
        return parse(old.document, source)
    return parse_all(parts, source=source)


async def rollback(
    session: AsyncSession, actor: str, version_id: int, *, comment: str = ""
) -> Applied:
    """Re-applies version `version_id`'s document as a new version (rollback_of set)."""
    policy = await stored(session, version_id)
    return await apply(session, actor, policy, comment=comment, rollback_of=version_id)


async def history(session: AsyncSession, *, limit: int = 50) -> list[PolicyVersion]:
    """The newest versions first."""
    rows = await session.scalars(
        select(PolicyVersion).order_by(PolicyVersion.id.desc()).limit(limit)
    )
    return list(rows.all())
