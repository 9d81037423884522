"""The `accessd` command line as an operator runs it: help, migrations, operators, serve."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.models import AuditEntry, Reader
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from tests.conftest import PASSWORD
from tests.paths import ROOT


def run(
    *args: str, db: str | None = None, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, ACCESSD_LOG_LEVEL="WARNING", **(env or {}))
    if db is not None:
        full_env["ACCESSD_DATABASE_URL"] = db
    return subprocess.run(
        [sys.executable, "-m", "accessd", *args],
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_help_lists_every_subcommand() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("serve", "db", "operators", "audit", "import", "demo"):
        assert command in proc.stdout
    assert run("operators", "--help").returncode == 0
    assert run("no-such-command").returncode == 2


def test_db_upgrade_on_an_empty_sqlite_file_then_current(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    up = run("db", "upgrade", db=db)
    assert up.returncode == 0, up.stderr
    assert "database at revision" in up.stdout
    assert "up to date" in run("db", "current", db=db).stdout


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("db", "current", db="mysql://nope")
    assert proc.returncode == 2
    assert "database_url" in proc.stderr
    missing = run("--config", str(tmp_path / "missing.toml"), "db", "current")
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_config_file_is_read_and_env_overrides_it(tmp_path: Path) -> None:
    target = tmp_path / "from-file.db"
    cfg = tmp_path / "accessd.toml"
    cfg.write_text(f'database_url = "sqlite:///{target}"\nport = 8123\n')
    assert run("--config", str(cfg), "db", "upgrade").returncode == 0
    assert target.exists()
    other = tmp_path / "from-env.db"
    run("--config", str(cfg), "db", "upgrade", db=f"sqlite:///{other}")
    assert other.exists()


async def test_operators_create_refuses_weak_passwords_and_duplicates(db_url: str) -> None:
    weak = run(
        "operators",
        "create",
        "--username",
        "ann",
        "--role",
        "admin",
        "--password-stdin",
        db=db_url,
        stdin="short\n",
    )
    assert weak.returncode == 1 and "at least 12" in weak.stderr
    good = run(
        "operators",
        "create",
        "--username",
        "ann",
        "--role",
        "admin",
        "--role",
        "auditor",
        "--password-stdin",
        db=db_url,
        stdin=f"{PASSWORD}\n",
    )
    assert good.returncode == 0, good.stderr
    assert "admin, auditor" in good.stdout
    again = run(
        "operators",
        "create",
        "--username",
        "ann",
        "--role",
        "admin",
        "--password-stdin",
        db=db_url,
        stdin=f"{PASSWORD}\n",
    )
    assert again.returncode == 1 and "exists already" in again.stderr
    bad_role = run(
        "operators",
        "create",
        "--username",
        "bo",
        "--role",
        "janitor",
        "--password-stdin",
        db=db_url,
        stdin=f"{PASSWORD}\n",
    )
    assert bad_role.returncode == 1 and "unknown role" in bad_role.stderr
    assert "ann" in run("operators", "list", db=db_url).stdout


SITE = """\
version: 1
facilities:
  - code: HQ
    name: Headquarters
    timezone: America/New_York
    security_level: 3
    areas: [{name: Lobby, class: controlled}]
    doors:
      - name: Main entrance
        into: Lobby
        accepts: [pki_cak]
        readers: [{name: Main in, direction: in}, {name: Office in, direction: out}]
"""


async def test_operators_bind_a_door_reader_to_existing_readers_with_audit(
    db_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as s:
        await versions.apply(s, "test", policy_loader.parse(SITE, "site.yaml"))
        await s.commit()
        readers = dict((await s.execute(select(Reader.name, Reader.id))).tuples().all())
    main, office = readers["Main in"], readers["Office in"]
    made = run(
        "operators",
        "create",
        "--username",
        "door-1",
        "--role",
        "door_reader",
        "--reader",
        str(main),
        "--password-stdin",
        db=db_url,
        stdin=f"{PASSWORD}\n",
    )
    assert made.returncode == 0, made.stderr
    unknown = run("operators", "bind", "door-1", "--reader", "987654", db=db_url)
    assert unknown.returncode == 1 and "no reader 987654" in unknown.stderr
    bound = run("operators", "bind", "door-1", "--reader", str(office), db=db_url)
    assert bound.returncode == 0, bound.stderr
    assert f"serves readers: {office}" in bound.stdout
    assert f"readers {office}" in run("operators", "list", db=db_url).stdout
    async with sessions() as s:
        entries = (
            await s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["operator.create", "operator.update"]))
                .order_by(AuditEntry.seq)
            )
        ).all()
    assert [(e.action, e.data.get("readers") or e.data["changes"]["readers"]) for e in entries] == [
        ("operator.create", [main]),
        ("operator.update", [[main], [office]]),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_answers_healthz_and_logs_in(db_url: str) -> None:
    created = run(
        "operators",
        "create",
        "--username",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        db=db_url,
        stdin=f"{PASSWORD}\n",
    )
    assert created.returncode == 0, created.stderr
    port = _free_port()
    env = dict(os.environ, ACCESSD_DATABASE_URL=db_url, ACCESSD_PORT=str(port))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "accessd",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # Up when it answers and reaches its database: /healthz gives the database under
            # a second, which a new connection on a loaded machine may not get at first.
            for _ in range(150):
                try:
                    health = await client.get("/healthz")
                    if health.json()["database"] == "ok":
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("accessd serve did not come up")
            token = await client.post(
                "/v1/auth/token", json={"username": "root", "password": PASSWORD}
            )
            assert token.status_code == 200
            assert (await client.get("/openapi.json")).status_code == 200
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=10)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    proc = run("serve", db=f"sqlite:///{tmp_path / 'empty.db'}")
    assert proc.returncode != 0
    assert "accessd db upgrade" in proc.stderr


def test_the_deploy_example_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from accessd.config import load_settings

    for key in [k for k in os.environ if k.startswith("ACCESSD_")]:
        monkeypatch.delenv(key)
    example = ROOT / "deploy" / "accessd.example.toml"
    settings = load_settings(example)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_the_systemd_unit_migrates_then_serves() -> None:
    unit = (ROOT / "deploy" / "accessd.service").read_text()
    assert "ExecStartPre=/opt/accessd/venv/bin/accessd db upgrade" in unit
    assert "ExecStart=/opt/accessd/venv/bin/accessd serve" in unit
