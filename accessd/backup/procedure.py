"""Backup and restore, end to end: `accessd backup create` and `accessd backup restore`.

A backup is a directory: the database dump, the files the service reads besides the
database (settings, trust anchors, intermediates, CRL files), and a manifest with their
hashes and the audit trail's head at the time. A restore goes into a new, empty database
and proves itself before it reports success: every file matches the manifest, the schema
revision is the one backed up, the audit hash chain verifies from its first entry, and the
entry that was the head when the backup began is there with the same hash (the service may
have written more while the dump ran; those entries verify as part of the chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from accessd import __version__
from accessd.backup import archive, database
from accessd.backup.archive import Entry, Manifest
from accessd.backup.database import BackupError
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.models import AuditEntry, AuditHead, Credential, Door, Person
from accessd.services import audit


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restore brought back, for the operator's report."""

    manifest: Manifest
    audit_entries: int
    files: dict[str, list[Path]]


async def create(settings: Settings, target: Path, *, settings_file: Path | None) -> Manifest:
    """Backs up the database at ``settings.database_url`` and the files ``settings`` names
    into the new directory ``target``."""
    directory = archive.new_directory(target)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            facts = await _facts(session)
    finally:
        await engine.dispose()
    dumped = await database.dump(settings.database_url, directory)
    files = [Entry("database", dumped, archive.sha256(directory / dumped))]
    if settings_file is not None:
        files.append(archive.add_file(directory, "settings", settings_file))
    files += [archive.add_file(directory, "trust_anchor", p) for p in settings.trust_anchors]
    files += [archive.add_file(directory, "intermediate", p) for p in settings.intermediates]
    if settings.crl_directory is not None and settings.crl_directory.is_dir():
        crls = sorted(p for p in settings.crl_directory.iterdir() if p.is_file())
        files += [archive.add_file(directory, "crl", p) for p in crls]
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        accessd_version=__version__,
        dialect=database.dialect(settings.database_url),
        files=files,
        **facts,
    )
    (directory / archive.MANIFEST).write_text(manifest.dump())
    return manifest


async def restore(source: Path, database_url: str, *, files_to: Path | None) -> Restored:
    """Restores the backup in ``source`` into the empty database at ``database_url`` (and
    its files into ``files_to``), then proves the result; BackupError says what failed."""
    manifest = Manifest.load(source)
    archive.check_files(source, manifest)
    target_dialect = database.dialect(database_url)
    if target_dialect != manifest.dialect:
        raise BackupError(
            f"this is a {manifest.dialect} backup; it cannot be restored into {target_dialect}"
        )
    engine = make_engine(database_url)
    try:
        await database.restore(source / manifest.database_file().name, database_url, engine)
        async with make_sessionmaker(engine)() as session:
            entries = await _prove(session, manifest)
    finally:
        await engine.dispose()
    placed = archive.restore_files(source, manifest, files_to) if files_to is not None else {}
    return Restored(manifest, entries, placed)


class _Facts(TypedDict):
    schema_revision: str
    audit_entries: int
    audit_head_seq: int
    audit_head_hash: str
    counts: dict[str, int]


async def _facts(session: AsyncSession) -> _Facts:
    checked = await audit.verify(session)
    if not checked.ok:
        # Refused: its restore could never prove itself, and an operator who learns of the
        # break from a failed restore months later has lost the time to investigate.
        raise BackupError(
            f"the audit chain is broken at entry {checked.first_broken_seq} "
            f"({checked.problem}); investigate before relying on this database "
            "(`accessd audit verify`), then back it up with pg_dump directly if needed"
        )
    head = await session.scalar(select(AuditHead))
    return {
        "schema_revision": await _revision(session),
        "audit_entries": checked.entries,
        "audit_head_seq": head.seq if head is not None else 0,
        "audit_head_hash": head.hash if head is not None else "",
        "counts": {
            "people": int(await session.scalar(select(func.count()).select_from(Person)) or 0),
            "credentials": int(
                await session.scalar(select(func.count()).select_from(Credential)) or 0
            ),
            "doors": int(await session.scalar(select(func.count()).select_from(Door)) or 0),
        },
    }


async def _revision(session: AsyncSession) -> str:
    return str(await session.scalar(text("SELECT version_num FROM alembic_version")) or "")


async def _prove(session: AsyncSession, manifest: Manifest) -> int:
    revision = await _revision(session)
    if revision != manifest.schema_revision:
        raise BackupError(
            f"the restored schema is at {revision or 'no revision'}, the backup's at "
            f"{manifest.schema_revision}"
        )
    checked = await audit.verify(session)
    if not checked.ok:
        raise BackupError(
            f"the restored audit chain is broken at entry {checked.first_broken_seq}: "
            f"{checked.problem}"
        )
    if manifest.audit_head_seq:
        at_head = await session.scalar(
            select(AuditEntry.hash).where(AuditEntry.seq == manifest.audit_head_seq)
        )
        if at_head != manifest.audit_head_hash:
            raise BackupError(
                f"the restored audit trail does not hold entry {manifest.audit_head_seq} "
                "as it was when the backup began"
            )
    return checked.entries
