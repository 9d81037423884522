"""What a backup directory holds besides the database, and its manifest.

The database is only half of what a restore needs. The trust anchors, the configured
intermediates, the CRL files of an isolated site and the settings file (challenge key,
broker password) live outside it, and without them a restored service refuses every card
or every reader. The manifest lists each file with its SHA-256, so a restore refuses a
backup that was damaged or altered, and records the database's audit head, so the restore
proves it brought back the trail it was given.

The directory is created readable by its owner only: the settings file in it holds
secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from accessd.backup.database import BackupError

MANIFEST = "manifest.json"
FORMAT = 1

Role = Literal["database", "settings", "trust_anchor", "intermediate", "crl"]
#: Where each role's files go under a restore's files directory.
FOLDERS: dict[str, str] = {
    "settings": ".",
    "trust_anchor": "trust-anchors",
    "intermediate": "intermediates",
    "crl": "crls",
}


@dataclass(frozen=True, slots=True)
class Entry:
    role: Role
    name: str  # the file's path inside the backup directory
    sha256: str
    original: str = ""  # where it was taken from (for the operator's eyes)


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    accessd_version: str
    dialect: str
    schema_revision: str
    audit_entries: int
    audit_head_seq: int
    audit_head_hash: str
    counts: dict[str, int]
    files: list[Entry] = field(default_factory=list)
    format: int = FORMAT

    def database_file(self) -> Entry:
        for entry in self.files:
            if entry.role == "database":
                return entry
        raise BackupError("the manifest names no database dump")

    def dump(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
            if raw.get("format") != FORMAT:
                raise BackupError(f"backup format {raw.get('format')!r} is not {FORMAT}")
            files = [Entry(**entry) for entry in raw.pop("files")]
            return cls(**raw, files=files)
        except FileNotFoundError as exc:
            raise BackupError(f"{directory} holds no {MANIFEST}: not an accessd backup") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{directory / MANIFEST} does not parse: {exc}") from exc


def new_directory(path: Path) -> Path:
    """Creates the backup directory (owner-only); refuses one that exists and is not empty."""
    if path.exists() and any(path.iterdir()):
        raise BackupError(f"{path} exists and is not empty: a backup goes into a new directory")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def add_file(directory: Path, role: Role, source: Path) -> Entry:
    """Copies ``source`` into the backup under its role's folder."""
    if not source.is_file():
        raise BackupError(f"{role} file {source} does not exist")
    folder = FOLDERS[role]
    target = directory / folder / source.name
    if target.exists():
        raise BackupError(f"two {role} files are named {source.name}; rename one")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    return Entry(role, str(target.relative_to(directory)), sha256(target), str(source))


def check_files(directory: Path, manifest: Manifest) -> None:
    """Every listed file is there with its hash; names the first that is not."""
    for entry in manifest.files:
        path = directory / entry.name
        if not path.is_file():
            raise BackupError(f"the backup lacks {entry.name} ({entry.role})")
        if sha256(path) != entry.sha256:
            raise BackupError(f"{entry.name} ({entry.role}) does not match its manifest hash")


def restore_files(directory: Path, manifest: Manifest, target: Path) -> dict[str, list[Path]]:
    """Copies the files outside the database into ``target``; returns them by role."""
    placed: dict[str, list[Path]] = {}
    for entry in manifest.files:
        if entry.role == "database":
            continue
        destination = target / FOLDERS[entry.role] / Path(entry.name).name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(directory / entry.name, destination)
        os.chmod(destination, 0o600)
        placed.setdefault(entry.role, []).append(destination)
    return placed
