"""The scratch PostgreSQL database of a run: created, filled with the site and its people
by COPY, and dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

from .names import SITE, cache_name, card_uuid, fasc_n, requester_name


@contextlib.contextmanager
def scratch_database(pg: str) -> Iterator[str]:
    """A database of its own on the server ``pg`` names, for the run; yields its URL."""
    import asyncpg

    dbname = f"accessd_bench_{uuid.uuid4().hex[:8]}"
    base = pg.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + dbname

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(pg)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{dbname}"'))
    try:
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


async def populate(url: str, people: int, requesters: int, panels: int, shared: int) -> None:
    """The site and its people, written with COPY: one facility, one requester door (and
    panel, reader, level and group) per requester panel, one door every cache panel has a
    reader of, and people 1..``shared`` in the group that opens it."""
    from population import insert_people  # bench/, on the path when a script runs

    from accessd.db import bulk
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.db.migrate import upgrade
    from accessd.models import (
        AccessGrant,
        AccessLevel,
        AccessLevelDoor,
        Area,
        Credential,
        Door,
        Facility,
        GroupMember,
        Panel,
        PersonGroup,
        Reader,
    )

    engine = make_engine(url)
    await upgrade(engine)
    now = datetime.now(UTC)
    stamp = {"version": 1, "created_at": now, "updated_at": now}
    shared_door = requesters + 1
    async with make_sessionmaker(engine)() as s:
        await bulk.insert_rows(
            s,
            Facility,
            [
                {
                    "id": 1,
                    "code": SITE,
                    "name": "Headquarters",
                    "timezone": "America/New_York",
                    "security_level": 3,
                    "address": "",
                    "threat_level": "normal",
                }
                | stamp
            ],
        )
        await bulk.insert_rows(
            s,
            Area,
            [
                {
                    "id": 10,
                    "facility_id": 1,
                    "parent_id": None,
                    "name": "Lobby",
                    "area_class": "controlled",
                    "is_scif": False,
                    "programs": [],
                    "min_eligibility": "none",
                    "two_person_window_s": 0,
                    "escort_required": False,
                    "escort_window_s": 30,
                    "anti_passback": "none",
                    "apb_reset_s": 0,
                }
                | stamp
            ],
        )
        await bulk.insert_rows(
            s,
            Panel,
            [
                {"id": i + 1, "facility_id": 1, "name": requester_name(i), "transport": "mqtt"}
                | stamp
                for i in range(requesters)
            ]
            + [
                {
                    "id": requesters + j + 1,
                    "facility_id": 1,
                    "name": cache_name(j),
                    "transport": "mqtt",
                }
                | stamp
                for j in range(panels)
            ],
        )
        door = {"area_id": 10, "from_area_id": None, "mode": "card_only", "unlock_seconds": 5}
        await bulk.insert_rows(
            s,
            Door,
            [
                door | stamp | {"id": i + 1, "name": f"Door {i}", "panel_id": i + 1, "accepts": []}
                for i in range(requesters)
            ]
            + [
                door
                | stamp
                | {"id": shared_door, "name": "Shared door", "panel_id": None, "accepts": []}
            ],
        )
        reader = {
            "direction": "in",
            "contact": False,
            "contactless": True,
            "pin_pad": False,
            "biometric": False,
        }
        await bulk.insert_rows(
            s,
            Reader,
            [
                reader | stamp | {"id": i + 1, "door_id": i + 1, "panel_id": None, "name": f"R{i}"}
                for i in range(requesters)
            ]
            + [
                reader
                | stamp
                | {
                    "id": requesters + j + 1,
                    "door_id": shared_door,
                    "panel_id": requesters + j + 1,
                    "name": f"Shared reader {j}",
                }
                for j in range(panels)
            ],
        )
        levels = requesters + 1
        await bulk.insert_rows(
            s,
            AccessLevel,
            [
                {"id": lv, "name": f"Level {lv}", "schedule_id": None, "description": ""} | stamp
                for lv in range(1, levels + 1)
            ],
        )
        await bulk.insert_rows(
            s, AccessLevelDoor, [{"level_id": lv, "door_id": lv} for lv in range(1, levels + 1)]
        )
        await bulk.insert_rows(
            s,
            PersonGroup,
            [
                {"id": g, "name": f"group-{g}", "description": ""} | stamp
                for g in range(1, levels + 1)
            ],
        )
        await bulk.insert_rows(
            s,
            AccessGrant,
            [
                {"id": g, "level_id": g, "group_id": g, "person_id": None}
                for g in range(1, levels + 1)
            ],
        )
        await insert_people(s, people, stamp, eligibility="secret")
        await bulk.insert_rows(
            s,
            GroupMember,
            [{"group_id": (p - 1) % requesters + 1, "person_id": p} for p in range(1, people + 1)]
            + [{"group_id": levels, "person_id": p} for p in range(1, shared + 1)],
        )
        await bulk.insert_rows(
            s,
            Credential,
            (
                {
                    "id": p,
                    "person_id": p,
                    "kind": "piv",
                    "state": "active",
                    "fasc_n": fasc_n(p),
                    "card_uuid": card_uuid(p),
                    "badge_number": None,
                    "valid_from": date(2024, 1, 1),
                    "valid_until": date(2030, 1, 1),
                }
                | stamp
                for p in range(1, people + 1)
            ),
        )
        await s.commit()
    await engine.dispose()
