"""Benchmark: access decisions at the scale of a large agency.

Targets: 100,000 people, 150,000 credentials, 2,000 doors, 500 access levels; the
engine alone at least 50,000 decisions/s on one core; the snapshot built (from PostgreSQL)
in under 5 s and under 1 GiB; decision latency flat from 1,000 to 1,000,000 people.

1. Fills a scratch PostgreSQL database with the site and population (COPY), then times
   `accessd.decisions.loader.load_snapshot` and the memory it takes.
2. Runs the pure engine over 200,000 requests on that snapshot, one core, and as a baseline
   measured in the same run the bare dictionary and set probes any decision needs.
3. Builds in-memory snapshots of 1,000 to 1,000,000 people and measures the median latency
   of one decision on each.

    python bench/decide.py [--pg postgresql://postgres@127.0.0.1/postgres] [--quick]

The last line printed is JSON: {"decisions_per_s": …, "snapshot_build_s": …,
"snapshot_rss_mib": …, "latency_us_by_people": {"1000": …, …}}.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from population import insert_people  # bench/, on the path when a script runs

from accessd.db import bulk
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.decisions.loader import load_snapshot
from accessd.models import (
    AccessGrant,
    AccessLevel,
    AccessLevelDoor,
    Area,
    Credential,
    Door,
    Facility,
    GroupMember,
    PersonGroup,
    Reader,
    Schedule,
)
from policies.decision import AccessRequest
from policies.engine import evaluate
from policies.presence import Presence
from policies.schedules import ALWAYS
from policies.snapshot import (
    AccessLevel as LevelPolicy,
)
from policies.snapshot import (
    AreaPolicy,
    CredentialPolicy,
    DoorPolicy,
    FacilityPolicy,
    IdKind,
    PersonPolicy,
    ReaderPolicy,
    Snapshot,
)
from policies.vocabulary import Affiliation, AreaClass, Direction, Mechanism

FACILITIES, DOORS_PER_FACILITY, LEVELS, GROUPS = 20, 100, 500, 200
EVIDENCE = frozenset({Mechanism.PKI_AUTH, Mechanism.BIO})
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- the site in the database -----------------------------------------------------------


async def populate(url: str, people: int, credentials: int) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    rnd = random.Random(7)
    now = datetime.now(UTC)
    stamp = {"version": 1, "created_at": now, "updated_at": now}
    week = [[[7 * 60, 19 * 60]] for _ in range(5)] + [[], []]
    async with make_sessionmaker(engine)() as s:
        await bulk.insert_rows(
            s,
            Schedule,
            [
                {"id": 1, "name": "business", "week": week, "holiday": [], "calendar_ids": []}
                | stamp
            ],
        )
        await bulk.insert_rows(
            s,
            Facility,
            [
                {
                    "id": f,
                    "code": f"F{f}",
                    "name": f"Facility {f}",
                    "timezone": "America/New_York",
                    "security_level": 3,
                    "address": "",
                    "threat_level": "normal",
                }
                | stamp
                for f in range(1, FACILITIES + 1)
            ],
        )
        areas, doors, readers = [], [], []
        for f in range(1, FACILITIES + 1):
            base = f * 10
            areas += [
                {"id": base, "facility_id": f, "name": "Lobby", "area_class": "controlled"},
                {
                    "id": base + 1,
                    "facility_id": f,
                    "name": "Floors",
                    "area_class": "limited",
                    "parent_id": base,
                },
                {
                    "id": base + 2,
                    "facility_id": f,
                    "name": "Vault",
                    "area_class": "exclusion",
                    "parent_id": base + 1,
                },
            ]
            for d in range(DOORS_PER_FACILITY):
                did = (f - 1) * DOORS_PER_FACILITY + d + 1
                into = base + (0 if d < 30 else 1 if d < 95 else 2)
                doors.append(
                    {
                        "id": did,
                        "area_id": into,
                        "name": f"Door {d}",
                        "from_area_id": None if into == base else into - 1,
                    }
                )
                readers.append(
                    {"id": did, "door_id": did, "name": f"Reader {d}", "direction": "in"}
                )
        await bulk.insert_rows(
            s,
            Area,
            [
                a
                | stamp
                | {
                    "is_scif": False,
                    "programs": [],
                    "min_eligibility": "none",
                    "two_person_window_s": 0,
                    "escort_required": False,
                    "escort_window_s": 30,
                    "anti_passback": "none",
                    "apb_reset_s": 0,
                    "parent_id": a.get("parent_id"),
                }
                for a in areas
            ],
        )
        await bulk.insert_rows(
            s,
            Door,
            [d | stamp | {"mode": "card_only", "unlock_seconds": 5, "accepts": []} for d in doors],
        )
        await bulk.insert_rows(
            s,
            Reader,
            [
                r
                | stamp
                | {"contact": True, "contactless": True, "pin_pad": True, "biometric": True}
                for r in readers
            ],
        )
        await bulk.insert_rows(
            s,
            AccessLevel,
            [
                {
                    "id": lv,
                    "name": f"Level {lv}",
                    "schedule_id": 1 if lv % 3 else None,
                    "description": "",
                }
                | stamp
                for lv in range(1, LEVELS + 1)
            ],
        )
        level_doors = set()
        for lv in range(1, LEVELS + 1):
            f = (lv - 1) % FACILITIES
            for d in rnd.sample(range(DOORS_PER_FACILITY), 30):
                level_doors.add((lv, f * DOORS_PER_FACILITY + d + 1))
        await bulk.insert_rows(
            s, AccessLevelDoor, [{"level_id": lv, "door_id": d} for lv, d in level_doors]
        )
        await bulk.insert_rows(
            s,
            PersonGroup,
            [
                {"id": g, "name": f"group-{g}", "description": ""} | stamp
                for g in range(1, GROUPS + 1)
            ],
        )
        grants = [
            {"level_id": lv, "group_id": g, "person_id": None}
            for g in range(1, GROUPS + 1)
            for lv in {rnd.randrange(1, LEVELS + 1) for _ in range(3)}
        ]
        await insert_people(s, people, stamp, eligibility="ts_sci")
        await bulk.insert_rows(
            s,
            GroupMember,
            (
                {"group_id": g, "person_id": p}
                for p in range(1, people + 1)
                for g in {p % GROUPS + 1, (p * 7) % GROUPS + 1}
            ),
        )
        grants += [
            {"level_id": p % LEVELS + 1, "person_id": p, "group_id": None}
            for p in range(1, people + 1, 10)
        ]
        await bulk.insert_rows(s, AccessGrant, grants)
        until = date(2030, 1, 1)
        await bulk.insert_rows(
            s,
            Credential,
            (
                {
                    "id": c,
                    "person_id": (c - 1) % people + 1,
                    "kind": "piv",
                    "state": "active",
                    "fasc_n": f"{c:050x}",
                    "card_uuid": str(uuid.UUID(int=c)),
                    "badge_number": None,
                    "valid_from": date(2024, 1, 1),
                    "valid_until": until,
                }
                | stamp
                for c in range(1, credentials + 1)
            ),
        )
        await s.commit()
    await engine.dispose()


async def build_from_db(url: str) -> tuple[Snapshot, float, float]:
    engine = make_engine(url)
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    async with make_sessionmaker(engine)() as s:
        snap = await load_snapshot(s)
    seconds = time.perf_counter() - start
    await engine.dispose()
    gc.collect()
    return snap, seconds, rss_mib() - before


# -- the engine -------------------------------------------------------------------------


def requests_for(snap: Snapshot, n: int, seed: int = 1) -> list[AccessRequest]:
    """Four in five requests are a person at a door one of their levels opens (door traffic
    is mostly people going where they work); the rest are a random door."""
    rnd = random.Random(seed)
    by_person: dict[int, list[str]] = {}
    for value, cid in snap.ids[IdKind.CARD_UUID].items():
        by_person.setdefault(snap.credentials[cid].person_id, []).append(value)
    people = list(by_person)
    readers_of: dict[int, list[int]] = {}
    for reader in snap.readers.values():
        readers_of.setdefault(reader.door_id, []).append(reader.id)
    all_readers = list(snap.readers)
    reqs = []
    for i in range(n):
        pid = rnd.choice(people)
        doors = [d for lv in snap.levels_of(snap.people[pid]) for d in snap.levels[lv].doors]
        if doors and rnd.random() < 0.8:
            reader = rnd.choice(readers_of[rnd.choice(doors)])
        else:
            reader = rnd.choice(all_readers)
        reqs.append(
            AccessRequest(
                reader,
                NOW + timedelta(seconds=i // 1000),
                IdKind.CARD_UUID,
                rnd.choice(by_person[pid]),
                EVIDENCE,
            )
        )
    return reqs


def engine_rate(snap: Snapshot, reqs: list[AccessRequest]) -> tuple[float, float]:
    presence = Presence()
    start = time.perf_counter()
    granted = 0
    for r in reqs:
        granted += evaluate(r, snap, presence).granted
    rate = len(reqs) / (time.perf_counter() - start)
    return rate, granted / len(reqs)


def baseline_rate(snap: Snapshot, reqs: list[AccessRequest]) -> float:
    """The probes every decision needs, and nothing else."""
    ids, creds, people, readers, levels = (
        snap.ids[IdKind.CARD_UUID],
        snap.credentials,
        snap.people,
        snap.readers,
        snap.levels,
    )
    start = time.perf_counter()
    hits = 0
    for r in reqs:
        door = readers[r.reader_id].door_id
        person = people[creds[ids[r.id_value]].person_id]
        for lv in person.levels:
            hits += door in levels[lv].doors
    return len(reqs) / (time.perf_counter() - start)


def synthetic(people: int) -> Snapshot:
    """An in-memory snapshot of `people` people, the same site for every size."""
    snap = Snapshot()
    tz = ZoneInfo("America/New_York")
    for f in range(1, FACILITIES + 1):
        snap.facilities[f] = FacilityPolicy(f, f"F{f}", tz)
        snap.areas[f * 10] = AreaPolicy(
            f * 10, f, "Lobby", AreaClass.CONTROLLED, escort_required=False
        )
        snap.areas[f * 10 + 1] = AreaPolicy(
            f * 10 + 1, f, "Floors", AreaClass.LIMITED, escort_required=False
        )
        for d in range(DOORS_PER_FACILITY):
            did = (f - 1) * DOORS_PER_FACILITY + d + 1
            snap.doors[did] = DoorPolicy(did, f, f"Door {d}", f * 10 + (d >= 30))
            snap.readers[did] = ReaderPolicy(did, did, Direction.IN)
    rnd = random.Random(3)
    all_doors = list(snap.doors)
    for lv in range(1, LEVELS + 1):
        snap.levels[lv] = LevelPolicy(lv, f"L{lv}", frozenset(rnd.sample(all_doors, 60)), ALWAYS.id)
    snap.group_levels = {
        g: frozenset({g % LEVELS + 1, (g * 3) % LEVELS + 1}) for g in range(1, GROUPS + 1)
    }
    valid_from, valid_until = date(2024, 1, 1), date(2030, 1, 1)
    groups = [frozenset({g}) for g in range(1, GROUPS + 1)]
    for p in range(1, people + 1):
        snap.people[p] = PersonPolicy(p, Affiliation.EMPLOYEE, groups=groups[p % GROUPS])
        snap.credentials[p] = CredentialPolicy(p, p, True, valid_from, valid_until)
        snap.ids[IdKind.CARD_UUID][f"{p:032x}"] = p
    return snap


def median_latency_us(snap: Snapshot, samples: int = 20_000) -> float:
    reqs = requests_for(snap, samples, seed=9)
    presence = Presence()
    clock = time.perf_counter_ns
    times = []
    for r in reqs:
        t0 = clock()
        evaluate(r, snap, presence)
        times.append(clock() - t0)
    return statistics.median(times) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--credentials", type=int, default=150_000)
    ap.add_argument("--quick", action="store_true", help="skip the 1,000,000-people run")
    args = ap.parse_args()

    dbname = f"accessd_bench_{uuid.uuid4().hex[:8]}"
    base = args.pg.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + dbname

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.pg)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{dbname}"'))
    try:
        t0 = time.perf_counter()
        asyncio.run(populate(url, args.people, args.credentials))
        print(
            f"populated {args.people} people, {args.credentials} credentials, "
            f"{FACILITIES * DOORS_PER_FACILITY} doors, {LEVELS} levels in "
            f"{time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        snap, build_s, build_mib = asyncio.run(build_from_db(url))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    print(f"snapshot from PostgreSQL: {build_s:.2f} s, +{build_mib:.0f} MiB RSS", file=sys.stderr)

    reqs = requests_for(snap, 200_000)
    engine_rate(snap, reqs[:20_000])  # warm the memo caches
    rate, granted = engine_rate(snap, reqs)
    base_rate = baseline_rate(snap, reqs)
    print(
        f"engine: {rate:,.0f} decisions/s ({granted:.0%} granted); baseline probes "
        f"{base_rate:,.0f}/s",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "baseline": "bare dict/set probes per request",
                "baseline_per_s": round(base_rate),
                "engine_to_baseline": round(rate / base_rate, 3),
            }
        )
    )

    latency: dict[str, float] = {}
    sizes = [1_000, 10_000, 100_000] + ([] if args.quick else [1_000_000])
    for size in sizes:
        snap_n = synthetic(size)
        median_latency_us(snap_n, 2_000)
        latency[str(size)] = round(median_latency_us(snap_n), 2)
        print(f"{size:>9,} people: median {latency[str(size)]} µs", file=sys.stderr)
        del snap_n
        gc.collect()
    print(
        json.dumps(
            {
                "decisions_per_s": round(rate),
                "snapshot_build_s": round(build_s, 2),
                "snapshot_rss_mib": round(build_mib, 1),
                "latency_us_by_people": latency,
            }
        )
    )


if __name__ == "__main__":
    main()


__all__: list[Any] = []
