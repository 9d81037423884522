"""`accessd serve` with the MQTT gateway on, started while no broker listens (issue 15):
the process stays up and serves the credential API, /healthz says degraded and /readyz
names the broker as down; a real Mosquitto (deploy's config) then starts on that port and
the service connects on its own, /readyz goes ready, the panels' caches go out, a simulated
panel's request is answered by accessd (not decided offline) and its events are stored and
confirmed. The outage is logged once per link, not once per attempt with a traceback, and
a service whose broker never came stops promptly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.models import PanelEvent, Reader
from drivers.mqtt.messages import CredentialRef
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import PanelConfig, PanelSession, Presentation
from tests.conftest import PASSWORD, Operators
from tests.faults.events import PANELS, Accessd, accessd_env, apply_policy
from tests.helpers import ok
from tests.mqtt_broker import MosquittoBroker, mqtt_users
from tests.waiting import until

__all__ = ["mqtt_users"]  # fixtures these tests use

pytestmark = pytest.mark.xdist_group("faults_events")

#: Generous for a loaded two-core machine; only a service that never connects exceeds it.
CONNECT_SECONDS = 60.0
#: Bound on a SIGTERM's shutdown: the final flush and the links' close, with nothing left
#: to wait on a broker (a connect hanging on one is tests/gateway/test_gateway_startup.py's).
STOP_SECONDS = 8.0


@pytest.fixture
async def away(mqtt_users: dict[str, str]) -> AsyncIterator[MosquittoBroker]:
    """A broker set up on a free port but not started: nothing listens there yet."""
    broker = MosquittoBroker.with_users(mqtt_users, [("hq", name) for name in PANELS])
    try:
        yield broker
    finally:
        broker.close()


async def test_serve_starts_with_the_broker_away_and_connects_when_it_comes(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    away: MosquittoBroker,
    mqtt_users: dict[str, str],
    tmp_path: Path,
) -> None:
    doors = await apply_policy(sessions)
    async with sessions() as s:
        reader = (await s.execute(select(Reader.id).where(Reader.name == "Main in"))).scalar_one()
    await ops.make("auditor", name="ann")
    env = accessd_env(db_url, away, mqtt_users) | {
        # Quick to notice the broker once it is there; the default is 30 s.
        "ACCESSD_MQTT_RECONNECT_MAX_SECONDS": "1",
    }
    log = tmp_path / "accessd.log"
    accessd = Accessd(env, log)
    await accessd.start()  # up: answering HTTP with the database reachable
    panel: PanelSession | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{accessd.port}") as client:
            health = ok(await client.get("/healthz"))
            assert (health["status"], health["mqtt"]) == ("degraded", "down"), health

            # The credential API serves: log in, list people.
            token = ok(
                await client.post("/v1/auth/token", json={"username": "ann", "password": PASSWORD})
            )
            auth = {"Authorization": f"Bearer {token['access_token']}"}
            assert ok(await client.get("/v1/people", headers=auth)) is not None

            async def readyz() -> httpx.Response:
                return await client.get("/readyz")

            # Still trying, in the background, and still up.
            for _ in range(600):
                body = (await readyz()).json()
                if body["parts"]["mqtt"]["feeds"]["attempts"] >= 3:
                    break
                await asyncio.sleep(0.1)
            down = await readyz()
            assert down.status_code == 503
            mqtt = down.json()["parts"]["mqtt"]
            assert mqtt["state"] == "down"
            for role in ("feeds", "requests"):
                assert mqtt[role]["state"] == "down", mqtt
                assert mqtt[role]["broker"] == f"127.0.0.1:{away.port}"
                assert mqtt[role]["attempts"] >= 2, mqtt
                assert "MqttUnreachable" in mqtt[role]["last_error"]
            assert mqtt_users["accessd"] not in down.text
            assert accessd.proc is not None and accessd.proc.returncode is None

            away.start()

            async def ready() -> bool:
                return (await readyz()).status_code == 200

            for _ in range(int(CONNECT_SECONDS * 10)):
                if await ready():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"not ready: {(await readyz()).text}")
            up = (await readyz()).json()["parts"]["mqtt"]
            assert up["feeds"]["state"] == up["requests"]["state"] == "connected"
            assert ok(await client.get("/healthz"))["status"] == "ok"

            # A panel: its cache comes from the gateway, its request is answered by accessd,
            # its events are stored and confirmed.
            link = MqttPanelLink(
                panel_mqtt_config(
                    "hq", "p1", host="127.0.0.1", port=away.port, password=mqtt_users["hq.p1"]
                ),
                retry_seconds=0.2,
            )
            config = PanelConfig(
                site="hq",
                panel="p1",
                doors=(DoorConfig(door=doors["p1"], readers=(reader,)),),
                decide_timeout=5.0,
                request_timeout=5.0,
                heartbeat_seconds=3600.0,
            )
            panel = session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"))
            await session.start()
            await until(lambda: session.announced, 30, what="the panel up")
            await until(
                lambda: session.cache.version is not None, 30, what="its cache from the gateway"
            )
            badge = CredentialRef(kind="badge_number", value="4711")
            result = await session.present(Presentation(reader=reader, credential=badge))
            assert not result.offline and not result.reason.startswith("service_"), result
            assert not result.granted
            await until(lambda: session.buffer.pending_count() == 0, 30, what="confirmed")
            async with sessions() as s:
                stored = (
                    await s.execute(
                        select(func.count())
                        .select_from(PanelEvent)
                        .where(PanelEvent.event_id == result.event.event_id)
                    )
                ).scalar_one()
            assert stored == 1
    finally:
        if panel is not None:
            await panel.close()
            panel.buffer.close()
        await accessd.terminate(30.0)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    # Said once per link (the feeds and the requests session), then counted.
    assert text.count("cannot connect to the MQTT broker") == 2, text[-3000:]
    assert text.count("connected to the MQTT broker 127.0.0.1") == 2, text[-3000:]


async def test_serve_with_the_broker_never_reached_stops_promptly(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    away: MosquittoBroker,
    mqtt_users: dict[str, str],
    tmp_path: Path,
) -> None:
    await apply_policy(sessions)
    log = tmp_path / "accessd.log"
    accessd = Accessd(accessd_env(db_url, away, mqtt_users), log)
    await accessd.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{accessd.port}") as client:
        assert ok(await client.get("/healthz"))["mqtt"] == "down"
    # SIGTERM while the links are between attempts: no wait on a broker that never came.
    took = await accessd.terminate(STOP_SECONDS)
    assert took < STOP_SECONDS
    assert "Traceback" not in log.read_text()
