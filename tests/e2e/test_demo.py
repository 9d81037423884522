"""`accessd demo` end to end: seeded database, Mosquitto, test PKI, virtual cards and the
site's simulated panels; decisions and panel events reach the database, and Ctrl-C stops
every child process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accessd.demo.mosquitto import free_port, mosquitto_binary

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


def demo(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "accessd.demo",
            "--database-url",
            f"sqlite:///{tmp_path / 'demo.db'}",
            "--port",
            str(free_port()),
            "--pki-port",
            str(free_port()),
            "--state-dir",
            str(tmp_path / "state"),
            "--round-seconds",
            "2",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(db: Path) -> tuple[int, int, int]:
    """(MQTT decisions, of them granted, panel events from the panels)."""
    with sqlite3.connect(db) as conn:
        decisions, granted = conn.execute(
            "SELECT count(*), coalesce(sum(granted), 0) FROM decision_events WHERE source = 'mqtt'"
        ).fetchone()
        (events,) = conn.execute(
            "SELECT count(*) FROM panel_events WHERE source = 'panel'"
        ).fetchone()
    return int(decisions), int(granted), int(events)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


#: What uvicorn says when the port the demo was given was taken before it bound it: `demo`
#: picks free ports by binding and closing, and the suite's other workers start servers
#: at the same time, so another socket can take one in between.
PORT_TAKEN = "address already in use"


def run_to_end(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    """Runs the demo until it exits (it is given --exit-after); once more on new ports if
    the ones it was given were taken meanwhile (a second run on the same state works)."""
    for attempt in range(2):
        proc = demo(tmp_path, *extra)
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode == 0 or PORT_TAKEN not in err or attempt:
            break
    return proc, out, err


def test_the_demo_stores_decisions_and_events_from_its_panels(tmp_path: Path) -> None:
    proc, out, err = run_to_end(tmp_path, "--exit-after", "15")
    assert proc.returncode == 0, err[-3000:]
    decisions, granted, events = stored(tmp_path / "demo.db")
    assert decisions > 0 and events > 0, err[-3000:]
    # Cards of cleared staff open HQ's doors; the suspended contractor's does not.
    assert 0 < granted < decisions
    assert "decision  " in out and "GRANTED [mqtt]" in out
    assert "denied (credential_not_active)" in out  # Devon Alvarez, under a CV alert
    assert f"{decisions} decisions and" in out
    assert "panels: round 1:" in err
    # The card material stays private to the user who ran it.
    for name in ("cards.json", "pki.json", "cards-public.json"):
        assert (tmp_path / "state" / "simulator" / name).stat().st_mode & 0o077 == 0


def test_ctrl_c_stops_the_broker_and_the_panels(tmp_path: Path) -> None:
    proc = demo(tmp_path)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        for line in proc.stdout:
            if "panels started" in line or time.monotonic() > deadline:
                break
        kids = children(proc.pid)
        assert len(kids) == 2  # the simulator and Mosquitto
        # Stopped once it is at work (a decision stored), not after a fixed time.
        deadline = time.monotonic() + 60
        while stored(tmp_path / "demo.db")[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.returncode == 130
        deadline = time.monotonic() + 10
        while any(alive(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(k) for k in kids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stored(tmp_path / "demo.db")[0] > 0
