"""`accessd backup create DIR` and `accessd backup restore DIR`: a whole deployment, the
database and the files beside it (see accessd/backup/procedure.py and docs/operations.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from accessd.cli.common import run, settings_from


def cmd_backup_create(args: argparse.Namespace) -> int:
    from accessd.backup.database import BackupError
    from accessd.backup.procedure import create

    settings = settings_from(args)
    config = args.config or os.environ.get("ACCESSD_CONFIG")
    try:
        manifest = run(
            lambda: create(settings, args.directory, settings_file=Path(config) if config else None)
        )
    except BackupError as exc:
        print(f"accessd: backup failed: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {what}" for what, n in manifest.counts.items())
    print(
        f"backed up {manifest.dialect} at schema {manifest.schema_revision}: {counts}; "
        f"audit trail of {manifest.audit_entries} entries, head {manifest.audit_head_seq}; "
        f"{len(manifest.files)} files -> {args.directory}"
    )
    if config:
        print("the backup holds the settings file and its secrets: keep it as such")
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    from accessd.backup.database import BackupError
    from accessd.backup.procedure import restore

    database_url = settings_from(args).database_url
    try:
        done = run(lambda: restore(args.directory, database_url, files_to=args.files_to))
    except BackupError as exc:
        print(f"accessd: restore failed: {exc}", file=sys.stderr)
        return 1
    m = done.manifest
    print(
        f"restored the backup of {m.created_at} (accessd {m.accessd_version}, schema "
        f"{m.schema_revision}); audit chain intact: {done.audit_entries} entries, "
        f"entry {m.audit_head_seq} as backed up"
    )
    for role, paths in sorted(done.files.items()):
        print(f"  {role}: " + ", ".join(str(p) for p in paths))
    if done.files:
        print("point trust_anchors, intermediates and crl_directory at the files above")
    return 0


def add_backup_command(sub: Any) -> None:
    """Adds `backup` to the `accessd` parser."""
    p = sub.add_parser("backup", help="back up or restore the database and its files")
    bs = p.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    create = bs.add_parser(
        "create", help="dump the database and copy the settings, trust anchors and CRLs"
    )
    create.add_argument("directory", type=Path, help="a new directory for the backup")
    create.set_defaults(func=cmd_backup_create)
    restore = bs.add_parser(
        "restore",
        help="restore into the empty database of --database-url and prove the audit trail",
    )
    restore.add_argument("directory", type=Path, help="a directory `backup create` wrote")
    restore.add_argument(
        "--files-to", type=Path, help="where to put the settings, trust anchors and CRL files"
    )
    restore.set_defaults(func=cmd_backup_restore)
