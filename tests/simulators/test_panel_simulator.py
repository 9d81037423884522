"""The panel simulator: credentials file round trip, scenario files, and a fleet running a
scenario against a real Mosquitto while accessd is silent (so every decision is offline)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from drivers.mqtt.access import SERVICE_USER
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.messages import (
    CacheEntry,
    CredSnapshot,
    Event,
    EventAck,
    OfflineDoor,
    decode,
    encode,
)
from drivers.mqtt.topics import PanelTopics, parse
from drivers.panel.cache import credential_hash
from drivers.tasks import TaskSet
from simulators.panel.credentials import read_credentials, write_credentials
from simulators.panel.fleet import FleetConfig, start_fleet, stop_fleet
from simulators.panel.scenario import Runner, ScenarioError, load_scenario
from simulators.pki import CardMaterial, TestPki
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users  # noqa: F401
from tests.paths import ROOT

SCENARIOS = ROOT / "simulators" / "panel" / "scenarios"
SALT = b"simulator-test-salt"


@pytest.fixture(scope="module")
def cards() -> list[CardMaterial]:
    pki = TestPki.create()
    return [pki.issue_card(name=f"Holder {i}") for i in range(3)]


def test_the_credentials_file_round_trips_and_is_private(
    tmp_path: Path, cards: list[CardMaterial]
) -> None:
    path = tmp_path / "cards.json"
    write_credentials(path, cards)
    assert path.stat().st_mode & 0o777 == 0o600
    again = read_credentials(path)
    assert [c.card_uuid for c in again] == [c.card_uuid for c in cards]
    assert again[0].certificates["9e"] == cards[0].certificates["9e"]
    assert again[0].fascn == cards[0].fascn


def test_a_file_that_is_not_credentials_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "cards.json"
    path.write_text('{"v": 1, "cards": [{"pin": "246810"}]}')
    with pytest.raises(ValueError, match="not a credentials file") as caught:
        read_credentials(path)
    assert "246810" not in str(caught.value)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_example_scenarios_load(path: Path) -> None:
    assert load_scenario(path)["steps"]


def test_a_step_without_an_action_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("steps:\n  - at: 1\n    dance: {}\n")
    with pytest.raises(ScenarioError, match="step 1"):
        load_scenario(path)


def fleet_snapshot(cards: list[CardMaterial], doors: list[int]) -> CredSnapshot:
    return CredSnapshot(
        version=1,
        salt=base64.b64encode(SALT).decode(),
        timezone="UTC",
        generated_at=datetime.now(UTC),
        doors={str(d): OfflineDoor(factors=1, offline_allowed=True) for d in doors},
        schedules={},
        entries=[
            CacheEntry(
                h=credential_hash(
                    SALT, "cert_sha256", c.certificates["9e"].fingerprint(hashes.SHA256()).hex()
                ),
                doors={str(d): "always" for d in doors},
                valid_until=c.expires,
            )
            for c in cards[:-1]  # the last card is not in the cache
        ],
    )


async def test_a_fleet_runs_a_scenario_offline_and_uploads_every_event(
    mosquitto: MosquittoBroker,  # noqa: F811
    mqtt_users: dict[str, str],  # noqa: F811
    cards: list[CardMaterial],
    tmp_path: Path,
) -> None:
    service = MqttClient(
        MqttConfig(
            host="127.0.0.1",
            port=mosquitto.port,
            client_id="sim-test-service",
            username=SERVICE_USER,
            password=mqtt_users[SERVICE_USER],
        )
    )
    await service.connect()
    seen: list[str] = []
    confirming = TaskSet("test service")

    def confirm(message: IncomingMessage) -> None:
        # As accessd does once the event is committed: the panel may then forget it.
        event = decode(Event, message.payload)
        seen.append(event.event_id)
        parsed = parse(message.topic)
        ack = encode(EventAck(seqs=[event.seq]))
        if not confirming.closed:
            confirming.spawn(service.publish(PanelTopics("hq", parsed.panel).ack, ack, 1))

    service.on_message(confirm)
    await service.subscribe([("ac/v1/hq/+/evt/#", 1)])
    for panel in ("p1", "p2"):
        # What accessd's gateway publishes: the retained cache of the panel's doors.
        doors = [1, 2] if panel == "p1" else [3, 4]
        await service.publish(
            PanelTopics("hq", panel).leaf("cred/snapshot"),
            encode(fleet_snapshot(cards, doors)),
            retain=True,
        )
    config = FleetConfig(
        host="127.0.0.1",
        port=mosquitto.port,
        site="hq",
        count=2,
        state_dir=tmp_path,
        passwords=mqtt_users,
        decide_timeout=0.1,
    )
    panels = await start_fleet(config)
    try:
        scenario = {
            "name": "test",
            "settle": 20,
            "steps": [
                {"at": 0, "rush": {"cards": 6, "over": 0.5}},
                {"at": 0.2, "force": {"panel": "p2", "door": 3, "seconds": 0.1}},
                {"at": 0.5, "partition": {"panels": ["p1"], "seconds": 0.5}},
                {"at": 0.7, "present": {"panel": "p1", "reader": 1, "card": 0, "every": 0}},
            ],
        }
        for _ in range(500):  # the retained snapshots arrive with the subscriptions
            if all(p.session.cache.version == 1 for p in panels):
                break
            await asyncio.sleep(0.01)
        report = await Runner(panels, cards).run(scenario)
    finally:
        await stop_fleet(panels)
        await confirming.close()
        await service.disconnect()
    assert report["presented"] == 7
    assert report["offline"] == 7
    # Cards 0 and 1 are cached, card 2 not: rush i uses card i % 3.
    assert report["granted"] == 5 and report["denied"] == 2
    assert report["reasons"] == {"offline_granted": 5, "offline_unknown_credential": 2}
    assert report["events_pending"] == 0
    assert report["events_uploaded"] == report["events_recorded"]
    assert len(set(seen)) == report["events_recorded"]
