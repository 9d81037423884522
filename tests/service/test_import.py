"""`accessd import`: all or nothing, row errors by line number, on both databases."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.db import bulk
from accessd.events import PeopleImported
from accessd.models import (
    AuditEntry,
    Credential,
    CredentialCertificate,
    CredentialTransition,
    Person,
)
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.importer import COLUMNS, ImportFailed, import_csv
from tests.conftest import Recorder
from tests.helpers import TODAY

ACTOR = Actor(None, "cli:test", frozenset())
UNTIL = (TODAY + timedelta(days=365 * 4)).isoformat()
FROM = TODAY.isoformat()


def person(ext: str, **over: str) -> dict[str, str]:
    return {
        "external_id": ext,
        "given_name": "Jo",
        "family_name": f"Smith{ext}",
        "email": f"{ext.lower()}@example.gov",
        "affiliation": "employee",
        "organization": "HQ",
        "investigation_tier": "tier3",
        "adjudication": "favorable",
        "eligibility": "secret",
        "cv_enrolled": "true",
        **over,
    }


def piv(n: int, **over: str) -> dict[str, str]:
    return {
        "credential_kind": "piv",
        "credential_state": "active",
        "fasc_n": f"{n:050x}",
        "card_uuid": f"00000000-0000-4000-8000-{n:012x}",
        "valid_from": FROM,
        "valid_until": UNTIL,
        "cert_9a_sha256": f"{n:064x}",
        "cert_9e_sha256": f"{n + 10**6:064x}",
        **over,
    }


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


async def run_import(sessions: async_sessionmaker[AsyncSession], text: str) -> Any:
    async with sessions() as s:
        result = await import_csv(s, ACTOR, io.StringIO(text), source="t.csv", batch=2)
        await s.commit()
        return result


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def failure(sessions: async_sessionmaker[AsyncSession], text: str) -> list[tuple[int, str]]:
    with pytest.raises(ImportFailed) as info:
        await run_import(sessions, text)
    assert await count(sessions, Person) == 0, "a failed import wrote people"
    assert await count(sessions, Credential) == 0
    return [(e.line, e.message) for e in info.value.errors]


async def test_imports_people_credentials_certificates_history_and_audit(
    sessions: async_sessionmaker[AsyncSession], events: Recorder
) -> None:
    rows = [
        person("E1") | piv(1),
        # A second credential for E1: the person's columns may be left empty.
        {
            "external_id": "E1",
            "credential_kind": "local_badge",
            "badge_number": "LB-1",
            "valid_from": FROM,
            "valid_until": UNTIL,
        },
        person("E2") | piv(2),
        person(
            "V1",
            affiliation="visitor",
            adjudication="pending",
            investigation_tier="none",
            eligibility="none",
        )
        | {
            "credential_kind": "temporary",
            "badge_number": "T-1",
            "valid_from": FROM,
            "valid_until": (TODAY + timedelta(days=30)).isoformat(),
        },
        person("E3"),  # no credential at all
    ]
    result = await run_import(sessions, to_csv(rows))
    assert (result.people, result.credentials, result.rows) == (4, 4, 5)
    assert await count(sessions, CredentialCertificate) == 4
    async with sessions() as s:
        e1 = await s.scalar(select(Person).where(Person.external_id == "E1"))
        assert e1 is not None and e1.email == "e1@example.gov"
        creds = (await s.scalars(select(Credential).where(Credential.person_id == e1.id))).all()
        assert sorted(c.kind for c in creds) == ["local_badge", "piv"]
        history = (await s.scalars(select(CredentialTransition))).all()
        assert len(history) == 4
        assert all(h.action == "import" and h.from_state is None for h in history)
        assert {h.reason for h in history} >= {"imported from t.csv line 2"}
        entries = (
            await s.scalars(select(AuditEntry).where(AuditEntry.action == "person.import"))
        ).all()
        assert len(entries) == 4
        assert (await audit.verify(s)).ok
    imported = events.of(PeopleImported)
    assert len(imported) == 1 and len(imported[0].person_ids) == 4


async def test_a_second_import_continues_the_audit_chain_and_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await run_import(sessions, to_csv([person("A1") | piv(1)]))
    await run_import(sessions, to_csv([person("A2") | piv(2)]))
    async with sessions() as s:
        ids = sorted((await s.scalars(select(Person.id))).all())
        assert len(set(ids)) == 2
        assert (await audit.verify(s)).ok


async def test_row_errors_name_their_lines_and_nothing_is_written(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = [
        person("E1") | piv(1),  # line 2: fine
        person("E2", affiliation="alien") | piv(2),  # line 3: bad enum
        person("E3")
        | piv(
            1,
            card_uuid="00000000-0000-4000-8000-00000000ffff",
            cert_9a_sha256="",
            cert_9e_sha256="",
        ),  # line 4: FASC-N of line 2
        person("E4") | piv(4, valid_until=(TODAY + timedelta(days=7 * 365)).isoformat()),  # 5
        person("E5", adjudication="pending") | piv(5),  # line 6: not adjudicated
        person("V1", affiliation="visitor") | piv(6),  # line 7: visitor PIV
        person("E1", given_name="Other"),  # line 8: clashes with 2
        person("E9", email="not-an-address"),  # line 9
    ]
    errors = await failure(sessions, to_csv(rows))
    lines = [line for line, _ in errors]
    assert lines == [3, 4, 5, 6, 7, 8, 9], errors
    text = dict(errors)
    assert "affiliation" in text[3]
    assert "fasc_n" in text[4] and "line 2" in text[4]
    assert "at most" in text[5]
    assert "favorable adjudication" in text[6]
    assert "visitors" in text[7]
    assert "given_name" in text[8] and "line 2" in text[8]
    assert "email" in text[9]
    # The full FASC-N never appears in an error message.
    assert f"{1:050x}" not in text[4]


async def test_identifiers_already_in_the_database_are_refused_by_line(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await run_import(sessions, to_csv([person("E1") | piv(1)]))
    before = await count(sessions, Person)
    with pytest.raises(ImportFailed) as info:
        await run_import(
            sessions, to_csv([person("E7") | piv(7), person("E1") | piv(8), person("E9") | piv(1)])
        )
    errors = {e.line: e.message for e in info.value.errors}
    assert "external_id 'E1' exists already" in errors[3]
    assert "exists already" in errors[4]
    assert await count(sessions, Person) == before


async def test_bad_header_is_line_one(sessions: async_sessionmaker[AsyncSession]) -> None:
    errors = await failure(sessions, "external_id,given_name,shoe_size\nE1,Jo,9\n")
    assert errors[0][0] == 1
    assert "family_name" in errors[0][1] and "shoe_size" in errors[0][1]


async def test_a_row_with_more_fields_than_the_header(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    header = "external_id,given_name,family_name,affiliation"
    errors = await failure(sessions, f"{header}\nE1,Jo,Doe,employee\nE2,Jo,Doe,employee,extra\n")
    assert errors == [(3, "more fields than columns in the header")]


async def test_a_failure_while_writing_leaves_nothing_half_imported(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bulk.insert_rows

    async def failing(session: AsyncSession, model: Any, rows: Any, **kw: Any) -> int:
        if model is Credential:
            raise RuntimeError("disk full")
        return await real(session, model, rows, **kw)

    monkeypatch.setattr(bulk, "insert_rows", failing)
    with pytest.raises(RuntimeError):
        await run_import(sessions, to_csv([person("E1") | piv(1), person("E2") | piv(2)]))
    assert await count(sessions, Person) == 0
    assert await count(sessions, AuditEntry) == 0


def _cli(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ACCESSD_DATABASE_URL=db_url, ACCESSD_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "accessd", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


async def test_cli_import_reports_progress_and_result(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    good = tmp_path / "people.csv"
    good.write_text(to_csv([person(f"E{i}") | piv(i) for i in range(1, 51)]))
    proc = _cli(db_url, "import", str(good))
    assert proc.returncode == 0, proc.stderr
    assert "imported 50 people and 50 credentials from 50 rows" in proc.stdout
    assert "rows" in proc.stderr  # the progress bar
    assert await count(sessions, Person) == 50


async def test_cli_import_prints_file_and_line_and_fails(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(to_csv([person("E1") | piv(1), person("E2", affiliation="x") | piv(2)]))
    proc = _cli(db_url, "import", "--quiet", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:3: affiliation" in proc.stderr
    assert "nothing was imported" in proc.stderr


async def test_cli_import_names_the_line_of_a_nul_byte_or_an_oversize_field(
    db_url: str, tmp_path: Path
) -> None:
    # Both were tracebacks from the csv module before.
    header = "external_id,given_name,family_name,affiliation"
    cases = {
        "nul.csv": f"{header}\nE1,Jo,Doe,employee\nE2,J\x00o,Doe,employee\n",
        "huge.csv": f"{header}\nE1,Jo,Doe,employee\nE2,{'J' * (128 * 1024 + 1)},Doe,employee\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = _cli(db_url, "import", "--quiet", str(path))
        assert proc.returncode == 1, (name, proc.stderr)
        said = {"nul.csv": "given_name: contains a NUL character", "huge.csv": "unreadable CSV:"}
        assert f"{path}:3: {said[name]}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
