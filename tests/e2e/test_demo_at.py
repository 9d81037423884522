"""`accessd demo --at WHEN` end to end: the simulated panels present cards as if at WHEN,
through the real request path, so HQ's staff are let in on a weekday morning and kept out
that night, and each such denial says why in words.

The two runs go side by side (ports and state of their own) to halve the wait.
"""

from __future__ import annotations

import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from accessd.demo.run import pick_broker
from tests.e2e.test_demo import demo
from tests.paths import ROOT

pytestmark = [
    pytest.mark.skipif(pick_broker("auto")[0] is None, reason="no MQTT broker installed"),
    # One worker for the module: its fixture is two demo runs, which each worker that got
    # one of the tests would run again.
    pytest.mark.xdist_group("demo_at"),
]

HQ = ZoneInfo("America/New_York")
#: hq.yaml's business-hours people (group hq-staff) with a card that works.
STAFF = ("Avery Nakamura", "Blake Okafor", "Casey Lindqvist")


def next_working_day() -> date:
    """The next weekday at HQ that is no holiday of policies/examples/hq.yaml (tomorrow or
    later: the demo's credentials are valid from yesterday on)."""
    policy = yaml.safe_load((ROOT / "policies" / "examples" / "hq.yaml").read_text())
    holidays = {d for cal in policy["holiday_calendars"] for d in cal["days"]}
    day = datetime.now(HQ).date() + timedelta(days=1)
    while day.weekday() >= 5 or day in holidays:
        day += timedelta(days=1)
    return day


@dataclass
class Run:
    out: str
    err: str
    #: (person's name, granted, reason, the decision's time at HQ) of the panels' decisions
    decisions: list[tuple[str, bool, str, datetime]]


def start(tmp_path: Path, when: str) -> subprocess.Popen[str]:
    return demo(tmp_path, "--exit-after", "12", "--at", when)


#: What uvicorn says when the port the demo was given was taken before it bound it: the
#: launcher picks free ports by binding and closing, and with the suite's workers starting
#: servers at the same time another socket can take one in between.
PORT_TAKEN = "address already in use"


def collect(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The run's output, once it has stopped (killed if it outlives the wait)."""
    try:
        return proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finish(proc: subprocess.Popen[str], out: str, err: str, db: Path) -> Run:
    assert proc.returncode == 0, err[-3000:]
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT p.given_name || ' ' || p.family_name, d.granted, d.reason, d.at"
            " FROM decision_events d JOIN people p ON p.id = d.person_id"
            " WHERE d.source = 'mqtt'"
        ).fetchall()
    decisions = [
        (
            name,
            bool(granted),
            reason,
            datetime.fromisoformat(at).replace(tzinfo=ZoneInfo("UTC")).astimezone(HQ),
        )
        for name, granted, reason, at in rows
    ]
    return Run(out, err, decisions)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    day = next_working_day()
    whens = {"morning": f"{day}T10:00", "night": f"{day}T22:00"}
    dirs = {k: tmp_path_factory.mktemp(k) for k in whens}
    procs = {k: start(dirs[k], whens[k]) for k in whens}
    runs: dict[str, Run] = {}
    for k, proc in procs.items():
        out, err = collect(proc)
        if proc.returncode != 0 and PORT_TAKEN in err:
            # Once more on new ports: the taken one says nothing of the demo.
            dirs[k] = tmp_path_factory.mktemp(k)
            proc = start(dirs[k], whens[k])
            out, err = collect(proc)
        runs[k] = finish(proc, out, err, dirs[k] / "demo.db")
    return runs


def test_decisions_are_made_and_stored_as_of_the_given_time(runs: dict[str, Run]) -> None:
    day = next_working_day()
    for name, hour in (("morning", 10), ("night", 22)):
        run = runs[name]
        assert run.decisions, run.err[-3000:]
        assert {at.date() for *_, at in run.decisions} == {day}
        assert {at.hour for *_, at in run.decisions} == {hour}
        assert f"cards presented as if at {day:%a %Y-%m-%d} {hour}:00" in run.out


def test_staff_are_let_in_on_a_weekday_morning(runs: dict[str, Run]) -> None:
    staff = [d for d in runs["morning"].decisions if d[0] in STAFF]
    assert staff and all(granted for _, granted, _, _ in staff), staff
    assert "outside_schedule" not in runs["morning"].out


def test_staff_are_kept_out_that_night_and_told_why(runs: dict[str, Run]) -> None:
    staff = [d for d in runs["night"].decisions if d[0] in STAFF]
    assert staff and {(granted, reason) for _, granted, reason, _ in staff} == {
        (False, "outside_schedule")
    }
    # The security office keeps its any-hour access level.
    assert any(granted for name, granted, _, _ in runs["night"].decisions if name == "Emery Sato")
    line = next(s for s in runs["night"].out.splitlines() if "outside_schedule" in s)
    assert "denied (outside_schedule) [mqtt]: outside the schedule (access level" in line
    assert "'business-hours': Mon-Fri 07:00-19:00 America/New_York; now " in line
    assert f"now {next_working_day():%a} 22:" in line
