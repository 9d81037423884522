"""The panel simulator in several processes: every panel in exactly one shard with its
single-process name and doors, the scenario split between the shards, the shards' reports
merged into one, and a 2 x 2 run against a real Mosquitto."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.mqtt.access import SERVICE_USER, panel_username
from simulators.panel.credentials import write_credentials
from simulators.panel.fleet import FleetConfig, build_panel
from simulators.panel.layout import PanelLayout
from simulators.panel.multiproc import (
    Shard,
    default_processes,
    fleet_layout,
    merge_reports,
    parse_shard,
    plan_shard,
    restore_steps,
    shard_range,
)
from simulators.pki import CardMaterial, TestPki
from tests.mqtt_broker import MosquittoBroker
from tests.paths import ROOT


@pytest.fixture(scope="module")
def cards() -> list[CardMaterial]:
    pki = TestPki.create()
    return [pki.issue_card(name=f"Holder {i}") for i in range(3)]


def shards(count: int) -> list[Shard]:
    return [Shard(i, count) for i in range(count)]


@pytest.mark.parametrize(("total", "count"), [(1, 1), (4, 2), (7, 3), (564, 3), (5, 5)])
def test_the_shards_cover_every_panel_exactly_once(total: int, count: int) -> None:
    seen = Counter(i for s in shards(count) for i in shard_range(total, s))
    assert seen == Counter(range(total))
    assert all(len(shard_range(total, s)) >= total // count for s in shards(count))


def test_the_numbered_fleet_has_the_single_process_names_doors_and_readers(
    tmp_path: Path,
) -> None:
    config = FleetConfig(
        host="127.0.0.1", port=9, site="hq", count=5, state_dir=tmp_path, passwords={}, prefix="x"
    )
    built = [build_panel(config, i) for i in range(1, 6)]
    try:
        expected = [(p.name, p.session.config.doors) for p in built]
    finally:
        for p in built:
            p.session.buffer.close()
    layout = fleet_layout(5, "x", 2)
    assert [(p.name, p.doors) for p in layout] == expected
    split = [p for s in shards(2) for p in plan_shard(s, layout, [], None).layout]
    assert split == list(layout)


def test_a_layouts_panels_are_split_by_index_keeping_their_names() -> None:
    layout = fleet_layout(3, "door-", 1)
    named = tuple(PanelLayout(f"hq-{i}", p.doors) for i, p in enumerate(layout))
    parts = [plan_shard(s, named, [], None).layout for s in shards(2)]
    assert [[p.name for p in part] for part in parts] == [["hq-0"], ["hq-1", "hq-2"]]


@pytest.mark.parametrize(("panels", "processes"), [(1, 1), (200, 1), (201, 2), (564, 3)])
def test_by_default_no_process_runs_more_than_200_panels(panels: int, processes: int) -> None:
    assert default_processes(panels) == processes


@pytest.mark.parametrize("text", ["2/2", "1", "-1/2", "a/b", "0/0"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="I/P"):
        parse_shard(text)
    assert parse_shard("1/2") == Shard(1, 2)


def test_the_scenario_is_split_so_each_step_happens_as_often_as_in_one_process(
    cards: list[CardMaterial],
) -> None:
    layout = fleet_layout(4, "p", 2)
    scenario = {
        "name": "split",
        "steps": [
            {"at": 5, "hook": "restart"},
            {"at": 0, "rush": {"cards": "all", "over": 1}},
            {"at": 1, "present": {"panel": "p4", "reader": 7, "card": 0}},
            {"at": 2, "partition": {"panels": ["p1"], "seconds": 1}},
            {"at": 3, "partition": {"panels": "all", "seconds": 1}},
            {"at": 4, "force": {"panel": "nowhere", "door": 1}},
        ],
    }
    plans = [plan_shard(s, layout, cards, scenario) for s in shards(2)]
    first, second = (p.scenario for p in plans)
    assert first is not None and second is not None
    # In `at` order: rush, present, partition p1, partition all, force, hook.
    assert plans[0].steps == [1, 3, 4, 5, 0] and plans[1].steps == [1, 2, 4]
    rushes = [s["steps"][0]["rush"]["cards"] for s in (first, second)]
    assert sum(rushes) == len(cards)
    # `rush` badges card i % n for i < its count: across the shards, every card once.
    rushed = [p.cards[i].card_uuid for p, n in zip(plans, rushes, strict=True) for i in range(n)]
    assert sorted(rushed) == sorted(c.card_uuid for c in cards)
    present = second["steps"][1]["present"]
    assert plans[1].cards[present["card"]].card_uuid == cards[0].card_uuid
    assert first["steps"][1]["partition"]["panels"] == ["p1"]
    assert "hook" in first["steps"][-1] and not any("hook" in s for s in second["steps"])
    # A panel no shard has is shard 0's, which refuses it as one process would.
    assert first["steps"][3]["force"]["panel"] == "nowhere"
    report: dict[str, Any] = {"steps": [{"step": 1, "action": "present"}]}
    restore_steps(report, plans[1].steps)
    assert report["steps"] == [{"step": 2, "action": "present"}]


def test_the_merged_report_sums_the_counts_and_keeps_every_shards_steps() -> None:
    def shard_report(panels: int, granted: int, reasons: dict[str, int], seconds: float) -> Any:
        return {
            "scenario": "s",
            "panels": panels,
            "connected": panels,
            "seconds": seconds,
            "granted": granted,
            "events_pending": 1,
            "reasons": reasons,
            "steps": [{"step": 0, "presented": granted}],
        }

    merged = merge_reports(
        {
            1: shard_report(3, 2, {"offline_granted": 2}, 1.5),
            0: shard_report(2, 5, {"offline_granted": 4, "granted": 1}, 2.5),
        }
    )
    assert merged == {
        "scenario": "s",
        "panels": 5,
        "connected": 5,
        "seconds": 2.5,
        "granted": 7,
        "events_pending": 2,
        "reasons": {"offline_granted": 6, "granted": 1},
        "steps": [
            {"step": 0, "presented": 5, "shard": 0},
            {"step": 0, "presented": 2, "shard": 1},
        ],
    }


SITE = "hq"
PANELS = [(SITE, f"p{i}") for i in range(1, 5)]


@pytest.fixture(scope="module")
def broker_users() -> dict[str, str]:
    users = {SERVICE_USER: secrets.token_urlsafe(32)}
    users.update({panel_username(s, p): secrets.token_urlsafe(32) for s, p in PANELS})
    return users


@pytest.fixture(scope="module")
def broker(broker_users: dict[str, str]) -> Iterator[MosquittoBroker]:
    with MosquittoBroker.with_users(broker_users, PANELS) as running:
        yield running


def test_two_processes_of_two_panels_connect_and_report_as_one_fleet(
    broker: MosquittoBroker,
    broker_users: dict[str, str],
    cards: list[CardMaterial],
    tmp_path: Path,
) -> None:
    write_credentials(tmp_path / "cards.json", cards)
    (tmp_path / "passwords.json").write_text(json.dumps(broker_users))
    scenario = {
        "name": "two-by-two",
        "settle": 10,
        "steps": [
            {"at": 0, "rush": {"cards": "all", "over": 0.2}},
            {"at": 0.5, "present": {"panel": "p1", "reader": 1, "card": 0, "every": 0}},
            {"at": 0.5, "present": {"panel": "p4", "reader": 7, "card": 1, "every": 0}},
        ],
    }
    (tmp_path / "scenario.yaml").write_text(json.dumps(scenario))
    # accessd is not running: every decision is the panels' own, offline.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators.panel",
            *("--broker", f"127.0.0.1:{broker.port}", "--site", SITE, "--count", "4"),
            *("--processes", "2", "--decide-timeout", "0.1", "--state-dir", str(tmp_path)),
            *("--credentials", str(tmp_path / "cards.json")),
            *("--passwords", str(tmp_path / "passwords.json")),
            *("--scenario", str(tmp_path / "scenario.yaml")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["processes"] == 2 and "failed_shards" not in report
    assert report["panels"] == 4 and report["connected"] == 4
    assert report["presented"] == len(cards) + 2 == report["offline"]
    assert sum(report["reasons"].values()) == report["presented"]
    steps = [(s["step"], s["shard"], s["action"]) for s in report["steps"]]
    assert steps == [(0, 0, "rush"), (0, 1, "rush"), (1, 0, "present"), (2, 1, "present")]
    # Each panel kept its own buffer (its single-process file name) and connected itself.
    assert sorted(p.name for p in tmp_path.glob("hq.p*.db")) == [f"hq.p{i}.db" for i in range(1, 5)]
    for _, panel in PANELS:
        assert f"u'{SITE}.{panel}'" in broker.log


def test_sigterm_reaches_every_shard_and_the_idle_fleet_reports_once(
    broker_users: dict[str, str],
    cards: list[CardMaterial],
    tmp_path: Path,
) -> None:
    write_credentials(tmp_path / "cards.json", cards)
    (tmp_path / "passwords.json").write_text(json.dumps(broker_users))
    # A broker of its own: its log holds this run's connections only.
    broker = MosquittoBroker.with_users(broker_users, PANELS)
    broker.start()
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.panel",
            *("--broker", f"127.0.0.1:{broker.port}", "--site", SITE, "--count", "4"),
            *("--processes", "2", "--credentials", str(tmp_path / "cards.json")),
            *("--passwords", str(tmp_path / "passwords.json")),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while broker.log.count("New client connected") < 4:
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        parent.send_signal(signal.SIGTERM)
        out, _ = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        broker.close()
    assert parent.returncode == 0
    report = json.loads(out)
    assert report["scenario"] == "idle" and report["processes"] == 2
    assert report["panels"] == 4 and report["connected"] == 4
