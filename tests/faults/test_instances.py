"""Two accessd instances (`accessd serve` subprocesses, MQTT gateway on) behind the shared
request subscription, one killed with SIGKILL under load: the other keeps answering the
panel, presence (hard anti-passback) holds across them, and the cache-publisher lead moves
to the survivor, which then carries a revocation to the panel's cache. Real Mosquitto and
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.events import EventBus
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.mqtt.access import SERVICE_USER
from drivers.mqtt.messages import CredentialRef
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import AccessResult, PanelConfig, PanelSession
from drivers.tasks import TaskSet
from simulators.panel.reader import read_card
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial
from tests.conftest import Operators
from tests.helpers import act, ok
from tests.mqtt_broker import MosquittoBroker, free_port, mosquitto, mqtt_users
from tests.piv_helpers import (
    PivService,
    fingerprint,
    ids_by_name,
    issue_piv_credential,
    piv_service,
)
from tests.waiting import until

__all__ = ["mosquitto", "mqtt_users"]  # fixtures these tests use

POLICY = """\
version: 1
groups:
  - name: staff
    members: [E1]
facilities:
  - code: hq
    name: Headquarters
    timezone: America/New_York
    security_level: 3
    panels:
      - {name: p1, transport: mqtt}
    areas:
      - name: Lobby
        class: controlled
        escort: {required: false}
        anti_passback: {mode: hard}
      # No anti-passback: its door may open offline, so the panel's cache holds the card.
      - name: Yard
        class: controlled
        escort: {required: false}
    doors:
      - name: Main entrance
        into: Lobby
        panel: p1
        accepts: [pki_cak]
        readers: [{name: Main in, direction: in, contactless: true}]
      - name: Gate
        into: Yard
        panel: p1
        accepts: [pki_cak]
        readers: [{name: Gate in, direction: in, contactless: true}]
access_levels:
  - name: Staff
    doors: [hq/Main entrance, hq/Gate]
    groups: [staff]
"""
#: The panel's wait for accessd: generous for a loaded machine, short enough that the
#: requests lost with the killed instance fall back offline within the test.
DECIDE_TIMEOUT = 3.0


@dataclass
class Instance:
    name: str
    proc: asyncio.subprocess.Process
    port: int


@dataclass
class Load:
    """Presentations made one after another, each with the loop time it started at."""

    results: list[tuple[float, AccessResult]] = field(default_factory=list)


@dataclass
class Site:
    svc: PivService
    card: CardMaterial
    cred: dict[str, Any]
    ops: Operators
    env: dict[str, str]
    broker: MosquittoBroker
    users: dict[str, str]
    doors: dict[str, int]
    readers: dict[str, int]


@pytest.fixture
async def site(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    mqtt_users: dict[str, str],
) -> AsyncIterator[Site]:
    if engine.dialect.name != "postgresql":
        pytest.skip("several instances share PostgreSQL; SQLite serves one")
    # The in-process service sets the site up and revokes; it runs no gateway.
    async with piv_service(db_url, engine, bus, tmp_path) as svc:
        card = svc.pki.issue_card(algorithms={"9a": "p256", "9e": "p256"})
        _person, cred = await issue_piv_credential(svc.client, ops, "E1", card)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        fm = await ops.headers("facility_manager")
        settings = svc.settings
        env = dict(
            os.environ,
            ACCESSD_DATABASE_URL=db_url,
            ACCESSD_TRUST_ANCHORS=json.dumps([str(p) for p in settings.trust_anchors]),
            ACCESSD_INTERMEDIATES=json.dumps([str(p) for p in settings.intermediates]),
            ACCESSD_MQTT_GATEWAY="true",
            ACCESSD_MQTT_URL=f"mqtt://127.0.0.1:{mosquitto.port}",
            ACCESSD_MQTT_USERNAME=SERVICE_USER,
            ACCESSD_MQTT_PASSWORD=mqtt_users[SERVICE_USER],
            # Instances must share it: a challenge one hands out, the other verifies.
            ACCESSD_CHALLENGE_KEY=secrets.token_hex(32),
            ACCESSD_LOG_LEVEL="warning",
        )
        yield Site(
            svc,
            card,
            cred,
            ops,
            env,
            mosquitto,
            mqtt_users,
            await ids_by_name(svc.client, fm, "/v1/doors"),
            await ids_by_name(svc.client, fm, "/v1/readers"),
        )


@contextlib.asynccontextmanager
async def instance(site: Site, name: str, tmp: Path) -> AsyncIterator[Instance]:
    port = free_port()
    env = dict(site.env, ACCESSD_PORT=str(port), ACCESSD_MQTT_CLIENT_ID=f"accessd-{name}")
    log = (tmp / f"{name}.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "accessd", "serve", env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def healthy() -> bool:
                with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                    health = await client.get("/healthz")
                    return bool(health.json()["database"] == "ok")
                return False

            for _ in range(300):
                if proc.returncode is not None:
                    raise AssertionError(
                        f"accessd {name} exited: {(tmp / f'{name}.log').read_text()}"
                    )
                if await healthy():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"accessd {name} did not come up")
        yield Instance(name, proc, port)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def panel(site: Site, tmp: Path) -> PanelSession:
    link = MqttPanelLink(
        panel_mqtt_config(
            "hq", "p1", host="127.0.0.1", port=site.broker.port, password=site.users["hq.p1"]
        ),
        retry_seconds=0.2,
    )
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(
            DoorConfig(door=site.doors["Main entrance"], readers=(site.readers["Main in"],)),
            DoorConfig(door=site.doors["Gate"], readers=(site.readers["Gate in"],)),
        ),
        decide_timeout=DECIDE_TIMEOUT,
        request_timeout=DECIDE_TIMEOUT,
    )
    session = PanelSession(config, link, EventBuffer(tmp / "p1.db"))
    await session.start()
    await until(lambda: link.connected and len(session.cache) > 0, 30, what="panel cache")
    return session


async def present(site: Site, session: PanelSession) -> AccessResult:
    reader = site.readers["Main in"]
    await until(lambda: session.challenges_held(reader) > 0, 30, what="challenges")
    return await session.present(await read_card(session, reader, VirtualPivCard(site.card)))


async def keep_presenting(site: Site, session: PanelSession, load: Load) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        load.results.append((started, await present(site, session)))


async def test_one_of_two_instances_killed_under_load(site: Site, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    async with instance(site, "a", tmp_path) as a:
        # a starts first and takes the cache-publisher lead (its advisory lock).
        await asyncio.sleep(1.0)
        async with instance(site, "b", tmp_path):
            session = await panel(site, tmp_path)
            tasks = TaskSet("instances test")
            try:
                first = await present(site, session)
                assert first.granted and not first.offline, first
                # The entry is shared within a write and a poll (accessd.decisions.presence).
                await asyncio.sleep(1.0)
                load = Load()
                tasks.spawn(keep_presenting(site, session, load), name="load")
                await until(lambda: len(load.results) >= 20, 60, what="load before the kill")
                a.proc.kill()  # SIGKILL: no last flush, no goodbye to the broker
                await a.proc.wait()
                # Requests in flight to the killed instance are lost with it (Mosquitto
                # drops them), and decided offline after the panel's wait: counted from
                # when that wait is over.
                settled = loop.time() + DECIDE_TIMEOUT + 1

                def after() -> list[AccessResult]:
                    return [r for t, r in load.results if t > settled]

                await until(lambda: len(after()) >= 20, 120, what="load after the kill")
                await tasks.close()
                # The survivor answers every one (none decided offline)...
                assert all(not r.offline for r in after()), [r.reason for r in after()]
                # ...and knows the person is inside already: hard anti-passback, before and
                # after the kill, whichever instance answered.
                online = [r for _, r in load.results if not r.offline]
                assert online and all(r.reason == "anti_passback" for r in online), {
                    r.reason for r in online
                }
                # The lead moved: a revocation now reaches the panel's cache, which only
                # the publisher sends.
                cert = CredentialRef(kind="cert_sha256", value=fingerprint(site.card, "9e"))
                assert session.cache.lookup(cert) is not None
                officer = await site.ops.headers("security_officer")
                ok(await act(site.svc.client, officer, site.cred["id"], "suspend", "lost"))
                await until(lambda: session.cache.lookup(cert) is None, 30, what="revocation")
            finally:
                await tasks.close()
                await session.close()
                session.buffer.close()
