"""The database half of a backup: a consistent dump, and its restore into an empty database.

PostgreSQL goes through its own tools, `pg_dump --format=custom` and `pg_restore`, which
take a consistent snapshot without stopping the service and restore into a server of the
same or a newer major version; SQLite through its online backup API, which copies a live
database page by page under its own locks. The password never goes on a command line
(other users can read those in `ps`): it travels in PGPASSWORD.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.errors import AccessdError

DUMP_POSTGRES = "database.pgdump"
DUMP_SQLITE = "database.sqlite3"


class BackupError(AccessdError):
    """A backup or restore step failed; the message says which and why."""


def dialect(database_url: str) -> str:
    """``postgresql`` or ``sqlite``."""
    return make_url(database_url).get_backend_name()


async def dump(database_url: str, directory: Path) -> str:
    """Writes the database into ``directory``; returns the file's name there."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        target = directory / DUMP_POSTGRES
        await _run_tool(
            "pg_dump",
            [*_libpq_args(url), "--format=custom", "--no-owner", "--file", str(target)],
            url,
        )
        return target.name
    source = _sqlite_path(url)
    target = directory / DUMP_SQLITE
    await asyncio.to_thread(_sqlite_copy, source, target)
    return target.name


async def restore(dump_file: Path, database_url: str, engine: AsyncEngine) -> None:
    """Loads ``dump_file`` into the database at ``database_url``, which must hold no table."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    if tables:
        some = ", ".join(sorted(tables)[:3])
        raise BackupError(
            f"the target database already holds {len(tables)} tables ({some}…): "
            "restore goes into a new, empty database only"
        )
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        if dump_file.name != DUMP_POSTGRES:
            raise BackupError(f"{dump_file.name} is not a PostgreSQL dump")
        await _run_tool(
            "pg_restore",
            [
                *_libpq_args(url, database_flag="--dbname"),
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                str(dump_file),
            ],
            url,
        )
        return
    if dump_file.name != DUMP_SQLITE:
        raise BackupError(f"{dump_file.name} is not a SQLite backup")
    await engine.dispose()  # no pooled connection may hold the file being replaced
    await asyncio.to_thread(_sqlite_copy, dump_file, _sqlite_path(url))


def _libpq_args(url: URL, database_flag: str = "--dbname") -> list[str]:
    args = []
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    args += [database_flag, url.database or "postgres", "--no-password"]
    return args


async def _run_tool(tool: str, args: list[str], url: URL) -> None:
    path = shutil.which(tool)
    if path is None:
        raise BackupError(
            f"{tool} is not installed (Debian: apt-get install postgresql-client); "
            "it must be the server's major version or newer"
        )
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    process = await asyncio.create_subprocess_exec(
        path,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await process.communicate()
    if process.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{tool} failed ({process.returncode}): {' / '.join(message[-3:])}")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no SQLite database at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
