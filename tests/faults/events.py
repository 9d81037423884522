"""The rig of the "no event lost" faults (issue 14), shared by tests/faults/test_no_event_lost.py
and bench/faults.py: accessd as a subprocess (`accessd serve`, MQTT gateway on), simulated
panels with their own buffers against a real Mosquitto, PostgreSQL (optionally behind a
`TcpProxy`), and the count of what each panel generated against what the database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.models import PanelEvent
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.mqtt.access import SERVICE_USER
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import PanelConfig, PanelSession
from drivers.tasks import TaskSet
from tests.mqtt_broker import MosquittoBroker, free_port
from tests.waiting import until

#: The panels of the rig: those the `mosquitto` fixture has logins for, at one site.
PANELS = ("p1", "p2")

POLICY = """\
version: 1
facilities:
  - code: hq
    name: Headquarters
    timezone: America/New_York
    security_level: 3
    panels:
      - {name: p1, transport: mqtt}
      - {name: p2, transport: mqtt}
    areas:
      - name: Lobby
        class: controlled
        escort: {required: false}
    doors:
      - name: Main entrance
        into: Lobby
        panel: p1
        accepts: [pki_cak]
        readers: [{name: Main in, direction: in, contactless: true}]
      - name: Dock door
        into: Lobby
        panel: p2
        accepts: [pki_cak]
        readers: [{name: Dock in, direction: in, contactless: true}]
"""
DOORS = {"p1": "Main entrance", "p2": "Dock door"}
#: Seconds without a confirmation before a panel sends its unconfirmed events again: short,
#: so that a test's recovery is quick (the default is 10 s).
CONFIRM_TIMEOUT = 2.0


async def apply_policy(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """The rig's site; returns panel name -> its door's id."""
    from accessd.models import Door

    async with sessions() as s:
        await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
        await s.commit()
        rows = (await s.execute(select(Door.name, Door.id))).all()
    ids = {name: door_id for name, door_id in rows}
    return {panel: ids[door] for panel, door in DOORS.items()}


@dataclass(frozen=True)
class Count:
    generated: int
    stored: int
    lost: int
    doubled: int
    unconfirmed: int

    def as_dict(self) -> dict[str, int]:
        return {
            "generated": self.generated,
            "stored": self.stored,
            "lost": self.lost,
            "doubled": self.doubled,
        }


class Accessd:
    """`accessd serve` in a subprocess; started, killed and stopped by the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0
        #: The HTTP port of the last start.
        self.port = 0

    async def start(self) -> None:
        assert self.proc is None
        self.port = port = free_port()
        env = dict(self.env, ACCESSD_PORT=str(port))
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "accessd", "serve", env=env, stdout=out, stderr=out
            )
        self.started += 1
        # Up means answering HTTP with the database reachable: a fault injected before
        # that would test a failed start, not the fault.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                if self.proc.returncode is not None:
                    raise AssertionError(f"accessd exited at start: {self.log.read_text()}")
                with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                    if (await client.get("/healthz")).json()["database"] == "ok":
                        return
                await asyncio.sleep(0.1)
        raise AssertionError("accessd did not come up within 60 s")

    async def kill(self) -> None:
        """SIGKILL: no last flush, no goodbye to the broker."""
        proc, self.proc = self.proc, None
        assert proc is not None
        proc.kill()
        await proc.wait()

    async def terminate(self, bound: float = 60.0) -> float:
        """SIGTERM and wait; returns how long the shutdown took."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return 0.0
        loop = asyncio.get_running_loop()
        began = loop.time()
        proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(bound):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"accessd did not stop within {bound} s") from None
        return loop.time() - began


@dataclass
class Rig:
    broker: MosquittoBroker
    users: dict[str, str]
    sessions: async_sessionmaker[AsyncSession]
    accessd: Accessd
    doors: dict[str, int]
    tmp: Path
    panels: dict[str, PanelSession] = field(default_factory=dict)
    generated: dict[str, int] = field(default_factory=dict)
    _load: TaskSet = field(default_factory=lambda: TaskSet("fault load"))

    def another_instance(self, name: str) -> Accessd:
        """A second `accessd serve` on the same database and broker: its own client ids,
        the same shared request subscription (tests.faults: "one of two instances")."""
        own = f"{self.accessd.env['ACCESSD_MQTT_CLIENT_ID']}-{name}"
        env = dict(self.accessd.env, ACCESSD_MQTT_CLIENT_ID=own)
        return Accessd(env, self.tmp / f"accessd-{name}.log")

    async def start_panels(self, names: tuple[str, ...] = PANELS) -> None:
        for name in names:
            link = MqttPanelLink(
                panel_mqtt_config(
                    "hq",
                    name,
                    host="127.0.0.1",
                    port=self.broker.port,
                    password=self.users[f"hq.{name}"],
                ),
                retry_seconds=0.2,
            )
            config = PanelConfig(
                site="hq",
                panel=name,
                doors=(DoorConfig(door=self.doors[name], readers=()),),
                confirm_timeout=CONFIRM_TIMEOUT,
                heartbeat_seconds=3600.0,
            )
            # Nothing pruned: the count reads every event the panel ever made.
            buffer = EventBuffer(self.tmp / f"hq.{name}.db", keep_acked=10**9)
            session = PanelSession(config, link, buffer)
            await session.start()
            self.panels[name] = session

    def record(self, name: str, n: int = 1) -> None:
        session = self.panels[name]
        for _ in range(n):
            session.record("door_pos", door=self.doors[name], data={"open": True})

    def load(self, rate: float) -> None:
        """Every panel records ``rate`` events a second until `stop_load`."""

        async def one(name: str) -> None:
            while True:
                self.record(name, max(1, int(rate / 20)))
                await asyncio.sleep(0.05)

        for name in self.panels:
            self._load.spawn(one(name), name=f"load {name}")

    async def stop_load(self) -> None:
        await self._load.close()
        self._load = TaskSet("fault load")

    async def all_confirmed(self, timeout: float = 90.0) -> float:  # noqa: ASYNC109
        """Waits until every panel's buffer is confirmed; returns the seconds it took."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        await until(
            lambda: all(s.buffer.pending_count() == 0 for s in self.panels.values()),
            timeout,
            what="every event confirmed",
        )
        return loop.time() - began

    async def count(self) -> Count:
        """generated/stored/lost/doubled from the panels' own buffers and the database."""
        generated: dict[str, set[str]] = {}
        for name, session in self.panels.items():
            rows = session.buffer._query("SELECT event_id FROM events", ())
            generated[name] = {r[0] for r in rows}
        stored = lost = doubled = 0
        from accessd.models import Panel

        async with self.sessions() as s:
            panel_ids = dict((await s.execute(select(Panel.name, Panel.id))).all())
            for name, ids in generated.items():
                rows = (
                    await s.execute(
                        select(PanelEvent.event_id, func.count())
                        .where(PanelEvent.panel_id == panel_ids[name])
                        .where(PanelEvent.source == "panel")
                        .group_by(PanelEvent.event_id)
                    )
                ).all()
                in_db = {event_id: n for event_id, n in rows}
                stored += sum(in_db.values())
                lost += len(ids - in_db.keys())
                # A second row of one event, or a row of no event the panel made.
                doubled += sum(n - 1 for n in in_db.values()) + len(in_db.keys() - ids)
        unconfirmed = sum(s.buffer.pending_count() for s in self.panels.values())
        return Count(
            sum(len(ids) for ids in generated.values()), stored, lost, doubled, unconfirmed
        )

    async def close(self) -> None:
        await self.stop_load()
        for session in self.panels.values():
            await session.close()
            session.buffer.close()
        with contextlib.suppress(AssertionError):
            await self.accessd.terminate(20.0)


def accessd_env(db_url: str, broker: MosquittoBroker, users: dict[str, str]) -> dict[str, str]:
    return dict(
        os.environ,
        ACCESSD_DATABASE_URL=db_url,
        ACCESSD_MQTT_GATEWAY="true",
        ACCESSD_MQTT_URL=f"mqtt://127.0.0.1:{broker.port}",
        ACCESSD_MQTT_USERNAME=SERVICE_USER,
        ACCESSD_MQTT_PASSWORD=users[SERVICE_USER],
        # Its own per rig: the broker (shared by a module's tests, and persistent) keeps
        # accessd's session and its queue across a test's end; a later test's accessd that
        # took the same client id would be handed the earlier test's events.
        ACCESSD_MQTT_CLIENT_ID=f"accessd-faults-{uuid.uuid4().hex[:8]}",
        ACCESSD_LOG_LEVEL="warning",
        # Every wait on the database bounded, so a stop during an outage is quick.
        ACCESSD_DATABASE_CONNECT_TIMEOUT_SECONDS="1",
        ACCESSD_DATABASE_STATEMENT_TIMEOUT_SECONDS="2",
    )


def kill_broker(broker: MosquittoBroker) -> None:
    """kill -9 of the broker: whatever it had not saved is gone."""
    proc, broker.proc = broker.proc, None
    assert proc is not None
    proc.kill()
    proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()


@contextlib.asynccontextmanager
async def rig(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    broker: MosquittoBroker,
    users: dict[str, str],
    tmp: Path,
    *,
    accessd_db_url: str | None = None,
) -> AsyncIterator[Rig]:
    doors = await apply_policy(sessions)
    accessd = Accessd(accessd_env(accessd_db_url or db_url, broker, users), tmp / "accessd.log")
    the_rig = Rig(broker, users, sessions, accessd, doors, tmp)
    try:
        yield the_rig
    finally:
        await the_rig.close()
