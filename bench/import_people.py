"""Benchmark: `accessd import` of 100,000 people with credentials into PostgreSQL.

Target: under 30 s on a 2-core machine, peak memory under 1 GiB.

It writes a CSV (every person with a PIV card and two certificate fingerprints, every tenth
also a local badge), creates and migrates a scratch database, and runs the real CLI in a
child process, timing it and reading its peak RSS. As a baseline measured in the same run it
COPYs the same number of people and credentials rows into bare tables with asyncpg, the
fastest way PostgreSQL takes rows, so the figure can be read against the machine's speed.

    python bench/import_people.py [--people 100000] [--pg postgresql://postgres@127.0.0.1/postgres]

The last line printed is JSON: {"people": …, "seconds": …, "peak_rss_mib": …}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg

from accessd.db.engine import make_engine
from accessd.db.migrate import upgrade
from accessd.services.importer import COLUMNS


def write_csv(path: Path, people: int) -> int:
    today = date.today()
    until = (today + timedelta(days=5 * 365)).isoformat()
    rows = 0
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for i in range(people):
            person = {
                "external_id": f"E{i:07d}",
                "given_name": f"Given{i}",
                "family_name": f"Family{i % 5000}",
                "email": f"person{i}@example.gov",
                "affiliation": "employee" if i % 4 else "contractor",
                "organization": f"Office {i % 40}",
                "investigation_tier": "tier3",
                "adjudication": "favorable",
                "eligibility": "secret" if i % 3 else "top_secret",
                "reinvestigation_due": (today + timedelta(days=1000 + i % 700)).isoformat(),
                "cv_enrolled": "true",
            }
            digest = hashlib.sha256(str(i).encode()).hexdigest()
            w.writerow(
                person
                | {
                    "credential_kind": "piv",
                    "credential_state": "active",
                    "fasc_n": f"{i:050x}",
                    "card_uuid": str(uuid.UUID(int=i + 1)),
                    "valid_from": today.isoformat(),
                    "valid_until": until,
                    "cert_9a_sha256": digest,
                    "cert_9e_sha256": hashlib.sha256(digest.encode()).hexdigest(),
                }
            )
            rows += 1
            if i % 10 == 0:
                w.writerow(
                    {
                        "external_id": person["external_id"],
                        "credential_kind": "local_badge",
                        "credential_state": "active",
                        "badge_number": f"LB-{i:07d}",
                        "valid_from": today.isoformat(),
                        "valid_until": until,
                    }
                )
                rows += 1
    return rows


async def baseline_copy(admin: str, dbname: str, people: int) -> float:
    """COPY the same volume of people and credential rows into bare tables."""
    conn = await asyncpg.connect(admin.rsplit("/", 1)[0] + "/" + dbname)
    try:
        await conn.execute(
            "CREATE TABLE bp (id int, ext text, given text, family text, email text);"
            "CREATE TABLE bc (id int, person int, fasc text, uuid text, until date);"
        )
        until = date.today() + timedelta(days=5 * 365)
        p_rows = [(i, f"E{i:07d}", f"G{i}", f"F{i}", f"p{i}@example.gov") for i in range(people)]
        c_rows = [(i, i, f"{i:050x}", str(uuid.UUID(int=i + 1)), until) for i in range(people)]
        start = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("bp", records=p_rows)
            await conn.copy_records_to_table("bc", records=c_rows)
        return time.perf_counter() - start
    finally:
        await conn.close()


async def admin_sql(admin: str, sql: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = ap.parse_args()

    dbname = f"accessd_bench_{uuid.uuid4().hex[:8]}"
    url = (
        args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        + "/"
        + dbname
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "people.csv"
        rows = write_csv(csv_path, args.people)
        print(
            f"wrote {rows} rows ({csv_path.stat().st_size / 2**20:.1f} MiB) "
            f"for {args.people} people",
            file=sys.stderr,
        )
        asyncio.run(admin_sql(args.pg, f'CREATE DATABASE "{dbname}"'))
        try:
            asyncio.run(migrate(url))
            env = dict(os.environ, ACCESSD_DATABASE_URL=url, ACCESSD_LOG_LEVEL="WARNING")
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "accessd", "import", str(csv_path), "--quiet"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                raise SystemExit(f"import failed with exit code {proc.returncode}")
            print(proc.stdout.strip(), file=sys.stderr)
            # ru_maxrss of children is in KiB on Linux.
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            base = asyncio.run(baseline_copy(args.pg, dbname, args.people))
        finally:
            asyncio.run(admin_sql(args.pg, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    print(
        json.dumps(
            {
                "baseline": "asyncpg COPY of the same people and credential rows",
                "baseline_seconds": round(base, 2),
                "ratio_to_baseline": round(seconds / base, 1),
            }
        )
    )
    print(
        json.dumps(
            {
                "people": args.people,
                "seconds": round(seconds, 2),
                "peak_rss_mib": round(peak_mib, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
