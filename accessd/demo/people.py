"""The demo's people: policies/examples/people.csv, imported the way `accessd import` does.

The file is the README's too, so the demo and a newcomer following the README start from
the same people and credentials. The demo changes two things on the way in, and only in
memory: every credential's validity starts yesterday (keeping its length), since the file's
dates are fixed and the demo must work on any day; and the virtual PIV cards the simulator
made are bound to their holders' credentials (FASC-N and certificate fingerprints).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import policies
from accessd.models import Person
from accessd.models.enums import Role
from accessd.services import people, programs
from accessd.services.actors import Actor
from accessd.services.importer import COLUMNS, ImportFailed, import_csv

EXAMPLES = Path(policies.__file__).resolve().parent / "examples"
PEOPLE_CSV = EXAMPLES / "people.csv"
#: Program read-ins of the example people (the SCIF of hq.yaml needs ALPHA). The import
#: format has no column for them: a read-in follows a briefing, one person at a time.
READ_INS: Mapping[str, tuple[str, ...]] = {
    "E1003": ("ALPHA",),
    "E2001": ("ALPHA",),
    "E3001": ("ALPHA",),
}
#: The contractor a continuous-vetting alert suspends, so the demo shows a suspended card.
UNDER_ALERT = "E1004"


def example_people(path: Path = PEOPLE_CSV) -> list[dict[str, str]]:
    """The rows of the example CSV, as `csv.DictReader` gives them."""
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def holders(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Who gets a virtual PIV card: everyone with a credential but a temporary badge."""
    return [
        {
            "holder": row["external_id"],
            "name": f"{row['given_name']} {row['family_name']}",
            "card_uuid": row["card_uuid"],
        }
        for row in rows
        if row["credential_kind"] not in ("", "temporary") and row["card_uuid"]
    ]


def card_uuid_of(rows: list[dict[str, str]], external_id: str) -> str:
    return next(r["card_uuid"] for r in rows if r["external_id"] == external_id)


def demo_csv(
    rows: list[dict[str, str]], cards: Mapping[str, Mapping[str, Any]], today: date
) -> str:
    """The rows as CSV again, valid from yesterday and with the virtual cards bound."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row = dict(row)
        if row.get("valid_from") and row.get("valid_until"):
            length = date.fromisoformat(row["valid_until"]) - date.fromisoformat(row["valid_from"])
            # From yesterday: cards are checked against the facility's local date, which at
            # HQ (New York) is still yesterday for five hours after UTC midnight.
            start = today - timedelta(days=1)
            row["valid_from"], row["valid_until"] = str(start), str(start + length)
        card = cards.get(row["external_id"])
        if card is not None:
            row["fasc_n"] = card["fasc_n"]
            row["card_uuid"] = card["card_uuid"]
            row["cert_9a_sha256"] = card["certificates"].get("9A", "")
            row["cert_9e_sha256"] = card["certificates"].get("9E", "")
        writer.writerow({c: row.get(c, "") for c in COLUMNS})
    return out.getvalue()


async def seed_people(
    session: AsyncSession,
    actors: Mapping[Role, Actor],
    cards: Mapping[str, Mapping[str, Any]],
    today: date,
) -> None:
    """Imports the example people with `cards` bound, reads them in, raises the alert."""
    text = demo_csv(example_people(), cards, today)
    try:
        await import_csv(session, actors[Role.REGISTRAR], io.StringIO(text), source=PEOPLE_CSV.name)
    except ImportFailed as exc:
        lines = "; ".join(f"line {e.line}: {e.message}" for e in exc.errors)
        raise RuntimeError(f"{PEOPLE_CSV} does not import: {lines}") from exc
    ids = {
        p.external_id: p.id
        for p in await session.scalars(
            select(Person).where(Person.external_id.in_([*READ_INS, UNDER_ALERT]))
        )
    }
    for external_id, read_ins in READ_INS.items():
        for program in read_ins:
            await programs.read_in(
                session, actors[Role.SECURITY_OFFICER], ids[external_id], program, "demo briefing"
            )
    # One contractor under a continuous-vetting alert: the card is suspended at once.
    await people.raise_alert(
        session,
        actors[Role.SECURITY_OFFICER],
        ids[UNDER_ALERT],
        source="CV feed",
        category="financial",
        description="demo alert",
        suspends_eligibility=True,
    )
