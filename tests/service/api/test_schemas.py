"""The published JSON Schemas (docs/schemas/) are the models', and say what `decode` does."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.mqtt import messages as m
from drivers.mqtt import schema
from tests.paths import ROOT

DOCS = ROOT / "docs" / "schemas"
AT = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
EVENT_ID = "0b7c4a56-8d1e-4c3f-9a2b-5e6f7a8b9c0d"
WINDOW = m.Window(day=0, start=420, end=1140)
ENTRY = m.CacheEntry(
    h="0" * 32, doors={"1": "always", "2": "business-hours"}, valid_until=date(2027, 1, 1)
)

#: A valid sample of every message kind, with its optional parts filled in.
SAMPLES: dict[str, m.Message] = {
    "event-ack": m.EventAck(seqs=[41, 42, 43]),
    "decide-request": m.DecideRequest(
        id="r-1",
        reader=3,
        at=AT,
        credential=m.CredentialRef(kind="card_uuid", value="f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
        evidence=["pki_cak", "pin"],
        proof=m.PkiProof(
            mechanism="pki_cak", challenge="AAEC", certificate="MIIB", signature="3q2+7w=="
        ),
        bio=m.BioProof(matched=True, score=870, signature="AA=="),
        reply_to="ac/v1/HQ/hq-panel-1/rsp",
    ),
    "decide-reply": m.DecideReply(
        id="r-1",
        granted=True,
        reason="granted",
        unlock_seconds=5,
        door=2,
        trail=["level HQ general"],
    ),
    "challenge-request": m.ChallengeRequest(
        id="c-1", reader=3, count=4, reply_to="ac/v1/HQ/p1/rsp"
    ),
    "challenge-reply": m.ChallengeReply(
        id="c-1", challenges=["AAECAwQ=", "BQYHCAk="], expires_at=AT + timedelta(seconds=30)
    ),
    "snapshot-request": m.SnapshotRequest(id="s-1", have_version=7),
    "error-reply": m.ErrorReply(id="r-2", error="invalid", detail="reader: field required"),
    "event": m.Event(
        event_id=EVENT_ID, seq=42, at=AT, type="access", door=2, reader=3, data={"granted": True}
    ),
    "door-state": m.DoorState(lock="locked", position="closed", mode="card_only", at=AT),
    "birth": m.Birth(
        firmware="accessd-simulator/1", doors=[1, 2], readers=[1, 2, 3, 4], cred_version=3
    ),
    "command": m.Command(
        id="k-1", verb="unlock", args={"seconds": 5}, expires_at=AT + timedelta(seconds=10)
    ),
    "command-result": m.CommandResult(
        id="k-1",
        ok=True,
        state=m.DoorState(lock="unlocked", position="closed", mode="card_only", at=AT),
    ),
    "cred-snapshot": m.CredSnapshot(
        version=3,
        salt="c2FsdA==",
        timezone="America/New_York",
        generated_at=AT,
        doors={"1": m.OfflineDoor(factors=1, offline_allowed=True)},
        schedules={
            "business-hours": m.OfflineSchedule(
                windows=[WINDOW], holidays=[date(2026, 7, 3)], holiday_windows=[WINDOW]
            )
        },
        entries=[ENTRY],
    ),
    "cred-delta": m.CredDelta(
        from_version=3,
        version=4,
        upsert=[ENTRY],
        remove=["f" * 32],
        doors={"2": m.OfflineDoor(factors=2, offline_allowed=False)},
    ),
}

#: (message, payload, what is wrong): each must fail the schema and `decode` alike.
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("event", {**json.loads(m.encode(SAMPLES["event"])), "extra": 1}, "unknown field"),
    ("event", {**json.loads(m.encode(SAMPLES["event"])), "type": "teleport"}, "unknown type"),
    ("event", {**json.loads(m.encode(SAMPLES["event"])), "event_id": "not-a-uuid"}, "bad id"),
    ("decide-request", {"v": 2, "id": "r-1", "reader": 3, "at": "2026-03-02T08:30:00Z"}, "v 2"),
    ("decide-request", {"id": "r-1", "at": "2026-03-02T08:30:00Z"}, "no reader"),
    ("decide-request", {"id": "r 1", "reader": 3, "at": "2026-03-02T08:30:00Z"}, "bad id"),
    ("decide-request", {"id": "r-1", "reader": 0, "at": "2026-03-02T08:30:00Z"}, "reader 0"),
    ("challenge-request", {"id": "c-1", "reader": 3, "count": 65}, "too many"),
    (
        "door-state",
        {"lock": "ajar", "position": "closed", "mode": "x", "at": "2026-03-02T08:30:00Z"},
        "lock",
    ),
    ("cred-delta", {"from_version": 3, "version": 4, "remove": ["XYZ"]}, "bad hash"),
]


def _validator() -> Callable[[dict[str, Any], Any], bool] | None:
    """is_valid(schema, instance) from jsonschema or jsonschema-rs, whichever is installed."""
    if importlib.util.find_spec("jsonschema") is not None:
        import jsonschema

        def with_jsonschema(doc: dict[str, Any], instance: Any) -> bool:
            cls = jsonschema.validators.validator_for(doc)
            checker = cls.FORMAT_CHECKER
            return bool(cls(doc, format_checker=checker).is_valid(instance))

        return with_jsonschema
    if importlib.util.find_spec("jsonschema_rs") is not None:
        import jsonschema_rs

        def with_rs(doc: dict[str, Any], instance: Any) -> bool:
            return bool(jsonschema_rs.validator_for(doc, validate_formats=True).is_valid(instance))

        return with_rs
    return None


IS_VALID = _validator()
needs_validator = pytest.mark.skipif(
    IS_VALID is None, reason="neither jsonschema nor jsonschema-rs is installed in the venv"
)


def published(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DOCS / f"{name}.schema.json").read_text())
    return doc


def test_the_committed_schema_files_are_what_the_models_generate() -> None:
    assert schema.differences(DOCS) == []
    assert sorted(p.name for p in DOCS.glob("*.schema.json")) == sorted(
        f"{n}.schema.json" for n in m.SCHEMAS
    )


def test_check_reports_a_stale_file_and_write_repairs_it(tmp_path: Path) -> None:
    assert schema.run(["--write", str(tmp_path)]) == 0
    assert schema.run(["--check", str(tmp_path)]) == 0
    (tmp_path / "event.schema.json").write_text("{}\n")
    (tmp_path / "gone.schema.json").write_text("{}\n")
    assert schema.differences(tmp_path) == [
        "event.schema.json: differs from the models",
        "gone.schema.json: no such message",
    ]
    assert schema.run(["--check", str(tmp_path)]) == 1
    schema.run(["--write", str(tmp_path)])
    assert schema.differences(tmp_path) == []


def test_the_readme_names_every_message() -> None:
    readme = (DOCS / "README.md").read_text()
    for name in m.SCHEMAS:
        assert f"({name}.schema.json)" in readme


def test_every_message_has_a_sample() -> None:
    assert set(SAMPLES) == set(m.SCHEMAS)
    for name, sample in SAMPLES.items():
        assert isinstance(sample, m.SCHEMAS[name])


@needs_validator
@pytest.mark.parametrize("name", sorted(m.SCHEMAS))
def test_a_sample_validates_against_its_published_schema(name: str) -> None:
    assert IS_VALID is not None
    payload = json.loads(m.encode(SAMPLES[name]))
    assert IS_VALID(published(name), payload)
    assert m.decode(m.SCHEMAS[name], m.encode(SAMPLES[name])) == SAMPLES[name]


@needs_validator
@pytest.mark.parametrize(
    ("name", "payload", "why"), INVALID, ids=[f"{n}-{w}" for n, _, w in INVALID]
)
def test_an_invalid_payload_is_refused_by_the_schema_and_by_decode(
    name: str, payload: dict[str, Any], why: str
) -> None:
    assert IS_VALID is not None
    assert not IS_VALID(published(name), payload), why
    with pytest.raises(m.PayloadError) as refused:
        m.decode(m.SCHEMAS[name], json.dumps(payload).encode())
    assert refused.value.reason == "invalid"


@needs_validator
def test_a_time_without_an_offset_is_refused_by_both() -> None:
    assert IS_VALID is not None
    payload = {**json.loads(m.encode(SAMPLES["door-state"])), "at": "2026-03-02T08:30:00"}
    assert not IS_VALID(published("door-state"), payload)
    with pytest.raises(m.PayloadError):
        m.decode(m.DoorState, json.dumps(payload).encode())
