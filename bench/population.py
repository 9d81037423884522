"""Bench helper: many people with favorable security records, written with bulk COPY."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db import bulk
from accessd.models import Person, SecurityRecord


async def insert_people(
    session: AsyncSession, people: int, stamp: dict[str, Any], *, eligibility: str
) -> None:
    """People 1..``people`` (external ids E1…), active employees, adjudicated favorably."""
    await bulk.insert_rows(
        session,
        Person,
        (
            {
                "id": p,
                "external_id": f"E{p}",
                "given_name": "G",
                "family_name": f"F{p}",
                "email": None,
                "affiliation": "employee",
                "organization": "",
                "status": "active",
            }
            | stamp
            for p in range(1, people + 1)
        ),
    )
    await bulk.insert_rows(
        session,
        SecurityRecord,
        (
            {
                "person_id": p,
                "investigation_tier": "tier3",
                "adjudication": "favorable",
                "eligibility": eligibility,
                "eligibility_suspended": False,
                "cv_enrolled": True,
            }
            | stamp
            for p in range(1, people + 1)
        ),
    )
