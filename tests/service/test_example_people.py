"""policies/examples/people.csv: the people the example policy files name, in the import
format, as the README imports them and as the demo imports them (valid from yesterday,
its virtual cards bound)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import yaml

from accessd.demo.people import PEOPLE_CSV, READ_INS, UNDER_ALERT, demo_csv, example_people, holders
from accessd.services.importer import plan
from tests.paths import ROOT

TODAY = date(2026, 12, 5)


def named_by_the_example_policies() -> set[str]:
    named: set[str] = set()
    for name in ("hq.yaml", "field-office.yaml"):
        doc = yaml.safe_load((ROOT / "policies" / "examples" / name).read_text())
        for group in doc.get("groups", []):
            named |= set(group.get("members", []))
        for level in doc.get("access_levels", []):
            named |= set(level.get("people", []))
    return named


def test_everyone_the_example_policies_name_is_in_the_file() -> None:
    ids = {row["external_id"] for row in example_people()}
    assert named_by_the_example_policies() <= ids
    assert set(READ_INS) | {UNDER_ALERT} <= ids


def test_the_file_imports_without_an_error() -> None:
    with PEOPLE_CSV.open(newline="", encoding="utf-8") as stream:
        checked = plan(stream, today=TODAY)
    assert checked.errors == []
    assert len(checked.people) == len(checked.credentials) == len(example_people())


def test_the_demo_imports_it_valid_from_yesterday_with_its_cards_bound() -> None:
    rows = example_people()
    card = {
        "fasc_n": "d" * 50,
        "card_uuid": rows[0]["card_uuid"],
        "certificates": {"9A": "a" * 64, "9E": "e" * 64},
    }
    checked = plan(io.StringIO(demo_csv(rows, {rows[0]["external_id"]: card}, TODAY)), today=TODAY)
    assert checked.errors == []
    first = checked.credentials[0][1]
    assert first["valid_from"] == TODAY - timedelta(days=1) and first["fasc_n"] == "d" * 50
    assert {(slot, sha) for _, slot, sha in checked.certs} == {("9A", "a" * 64), ("9E", "e" * 64)}
    # Everyone with a PIV or law-enforcement card gets a virtual one; the visitor does not.
    kinds = {r["external_id"]: r["credential_kind"] for r in rows}
    assert {h["holder"] for h in holders(rows)} == {e for e, k in kinds.items() if k != "temporary"}
