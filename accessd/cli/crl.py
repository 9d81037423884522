"""`accessd crl import FILE...`: CRLs carried in by hand, for sites with no path to the CAs.

The files go to the `crl_directory` setting's directory, which a running service reads
again every `crl_refresh_seconds`; nothing else needs restarting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from accessd.cli.common import settings_from

_SAID = {
    "imported": "imported",
    "replaced": "replaced an older CRL of",
    "unchanged": "already held for",
    "older": "NOT imported, older than the CRL held for",
}


def cmd_crl_import(args: argparse.Namespace) -> int:
    from accessd.validation.crl_files import import_crl

    directory: Path | None = args.directory or settings_from(args).crl_directory
    if directory is None:
        print(
            "accessd: no CRL directory: set crl_directory (ACCESSD_CRL_DIRECTORY) "
            "or give --directory",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for source in args.files:
        try:
            done = import_crl(source, directory, force=args.force)
        except (OSError, ValueError) as exc:
            print(f"accessd: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"{source}: {_SAID[done.outcome]} {done.issuer} "
            f"({done.revoked} revoked) -> {done.stored.name}"
        )
        failed += done.outcome == "older"
    return 1 if failed else 0


def add_crl_command(sub: Any) -> None:
    """Adds `crl` to the `accessd` parser."""
    p = sub.add_parser("crl", help="certificate revocation lists")
    crs = p.add_subparsers(dest="crl_command", required=True, metavar="ACTION")
    imp = crs.add_parser("import", help="store CRL files (DER or PEM) where the service reads them")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--directory", type=Path, help="the CRL directory (default: the crl_directory setting)"
    )
    imp.add_argument(
        "--force", action="store_true", help="replace a held CRL even with an older one"
    )
    imp.set_defaults(func=cmd_crl_import)
