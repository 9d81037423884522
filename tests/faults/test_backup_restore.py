"""Backup and restore as an operator runs them: `accessd backup create` on a live site,
`accessd backup restore` into a new database on both backends, and the restored service
answering as the original did (same people, same decision, same operators' tokens, the
audit chain intact). A damaged backup and a non-empty target are refused."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.db.engine import make_engine
from tests.conftest import Operators, _pg_admin, _pg_url
from tests.helpers import ok
from tests.paths import ROOT
from tests.service.api.test_decisions_api import MONDAY_10AM, ask, setup_site


def accessd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "accessd", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def trust_material(where: Path) -> tuple[Path, Path]:
    """A CA certificate and a CRL directory holding one CRL of it: files outside the database."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Backup Test Root")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    anchor = where / "root.pem"
    anchor.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    crls = where / "crls"
    crls.mkdir()
    (crls / "root.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return anchor, crls


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The decision compared across the restore is a reader's claim ("pki_cak" on its
    word), which only a service that does not require card proofs takes."""
    return Settings(database_url=db_url, require_card_proofs=False)


@pytest.fixture
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL for a database with no table at all, as a restore needs."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"accessd_r_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_backup_restores_into_a_new_database_and_the_service_answers_as_before(
    client: httpx.AsyncClient,
    ops: Operators,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    empty_database: str,
    tmp_path: Path,
) -> None:
    site = await setup_site(client, ops, sessions)
    # An auditor too, so the replies name the person and card compared below.
    reader = await ops.headers("door_reader", "auditor", readers=[site["main"], site["office"]])
    admin = await ops.headers("admin")
    question = ask(site["main"], MONDAY_10AM, "pki_cak")
    before = ok(await client.post("/v1/decisions", json=question, headers=reader))
    people = ok(await client.get("/v1/people", headers=admin))
    assert before["granted"]

    anchor, crls = trust_material(tmp_path)
    config = tmp_path / "accessd.toml"
    config.write_text(
        f'database_url = "{db_url}"\ntrust_anchors = ["{anchor}"]\ncrl_directory = "{crls}"\n'
    )
    backup = tmp_path / "backup"
    made = accessd("--config", str(config), "backup", "create", str(backup))
    assert made.returncode == 0, made.stderr
    assert "1 people" in made.stdout and "the backup holds the settings file" in made.stdout
    assert oct((backup).stat().st_mode & 0o777) == "0o700"

    files = tmp_path / "restored-files"
    restored = accessd(
        "--database-url", empty_database, "backup", "restore", str(backup), "--files-to", str(files)
    )
    assert restored.returncode == 0, restored.stderr
    assert "audit chain intact" in restored.stdout
    assert (files / "trust-anchors" / "root.pem").read_bytes() == anchor.read_bytes()
    assert (files / "crls" / "root.crl").read_bytes() == (crls / "root.crl").read_bytes()
    assert (files / "accessd.toml").read_text() == config.read_text()

    # The restored service, on the restored files, answers as the first one did: the same
    # people, the same decision, the operators' tokens still good.
    settings = Settings(
        database_url=empty_database,
        trust_anchors=[files / "trust-anchors" / "root.pem"],
        crl_directory=files / "crls",
        require_card_proofs=False,  # as the first service (the settings fixture below)
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://accessd.test"
        ) as again,
    ):
        assert ok(await again.get("/v1/people", headers=admin)) == people
        after = ok(await again.post("/v1/decisions", json=question, headers=reader))
    assert {k: after[k] for k in ("granted", "reason", "person_id", "credential_id")} == {
        k: before[k] for k in ("granted", "reason", "person_id", "credential_id")
    }
    verified = accessd("--database-url", empty_database, "audit", "verify")
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout

    # Into a database that holds tables already: refused, nothing touched.
    twice = accessd("--database-url", empty_database, "backup", "restore", str(backup))
    assert twice.returncode == 1 and "already holds" in twice.stderr


async def test_a_damaged_backup_is_refused_before_anything_is_restored(
    client: httpx.AsyncClient, db_url: str, empty_database: str, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    made = accessd("--database-url", db_url, "backup", "create", str(backup))
    assert made.returncode == 0, made.stderr
    dump = next(p for p in backup.iterdir() if p.name.startswith("database."))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    refused = accessd("--database-url", empty_database, "backup", "restore", str(backup))
    assert refused.returncode == 1
    assert "does not match its manifest hash" in refused.stderr
    # The target is still empty: a later restore of a good backup can go there.
    engine = make_engine(empty_database)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda sync: inspect(sync).get_table_names()) == []
    finally:
        await engine.dispose()
    # Creating into a directory that is already a backup is refused too.
    assert accessd("--database-url", db_url, "backup", "create", str(backup)).returncode == 1
