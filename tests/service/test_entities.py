"""Every kind of record the audit log names is an `Entity`, and the decision service's
change feed does something deliberate with each: a new kind cannot be forgotten there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from accessd.decisions import service as decisions
from accessd.events import EventBus
from accessd.models.enums import Entity
from accessd.policyfile import site
from accessd.services import crud, policy_objects
from accessd.services import facilities as site_records
from tests.paths import ROOT

AUDIT_WRITERS = {"record", "record_many"}


def audited_entities(path: Path) -> list[tuple[int, ast.expr]]:
    """The `entity=` argument of every audit.record / record_many call in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in AUDIT_WRITERS:
            continue
        found += [(node.lineno, kw.value) for kw in node.keywords if kw.arg == "entity"]
    return found


def test_every_entity_written_to_the_audit_log_is_an_entity_member() -> None:
    known = {e.value for e in Entity} | {f"Entity.{name}" for name in Entity.__members__}
    calls, wrong = 0, []
    for path in sorted((ROOT / "accessd").rglob("*.py")):
        for line, value in audited_entities(path):
            calls += 1
            if isinstance(value, ast.Constant):
                named = value.value
            elif isinstance(value, ast.Attribute) and ast.unparse(value.value) == "Entity":
                named = ast.unparse(value)
            else:
                continue  # a variable, typed Entity where it is made (mypy checks that)
            if named not in known:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {named!r} is no Entity")
    assert calls > 20, "the scan found no audit calls: has audit.record been renamed?"
    assert wrong == []


def test_the_scan_sees_a_stray_entity_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('await audit.record(s, actor="a", action="x.y", entity="doors", entity_id=1)\n')
    [(_, value)] = audited_entities(bad)
    assert isinstance(value, ast.Constant) and value.value not in set(Entity)


def test_every_kind_edited_one_at_a_time_or_by_policy_file_reloads_the_policy() -> None:
    kinds = [
        v
        for m in (site_records, policy_objects)
        for v in vars(m).values()
        if isinstance(v, crud.Kind)
    ]
    assert len(kinds) == 9
    records = [r for r in vars(site).values() if isinstance(r, type) and issubclass(r, site.Record)]
    entities = {k.entity for k in kinds} | {r.ENTITY for r in records if r is not site.Record}
    assert entities <= decisions._POLICY_ENTITIES


def test_the_change_feed_classifies_every_entity_exactly_once() -> None:
    sets = [decisions._POLICY_ENTITIES, decisions._RECORD_ENTITIES, decisions._IGNORED_ENTITIES]
    for entity in Entity:
        assert sum(entity in s for s in sets) == 1, entity


@pytest.mark.parametrize("entity", list(Entity))
def test_the_change_feed_acts_on_each_entity_as_classified(entity: Entity) -> None:
    service = decisions.DecisionService(async_sessionmaker(), EventBus())
    service._note(entity, "7", {"credential_ids": [8]})
    reloads = (
        service._pending_policy,
        sorted(service._pending_people),
        sorted(service._pending_credentials),
    )
    if entity in decisions._POLICY_ENTITIES:
        assert reloads == (True, [], [])
    elif entity is Entity.PERSON:
        assert reloads == (False, [7], [8])
    elif entity is Entity.CREDENTIAL:
        assert reloads == (False, [], [7])
    else:
        assert entity in decisions._IGNORED_ENTITIES
        assert reloads == (False, [], [])
