"""Each scenario file of the panel simulator run against the whole stack: the project's
Mosquitto, accessd with its MQTT gateway and database, a fleet of simulated panels on the
site's real doors and readers, virtual PIV cards bound to people's credentials. Asserted on
the runner's report and on what accessd stored: decisions, every event exactly once, the
forced-door alarm, a revocation reaching the doors online and offline, outages bridged by
the panels' caches and buffers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.events import EventBus
from accessd.gateway.service import MqttGateway
from accessd.models import DecisionEvent, Panel, PanelEvent
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.mqtt.access import SERVICE_USER
from simulators.panel.fleet import FleetConfig, SimulatedPanel, start_fleet, stop_fleet
from simulators.panel.layout import parse_layout
from simulators.panel.scenario import Hook, Runner, load_scenario
from simulators.pki import CardMaterial
from tests.conftest import Operators
from tests.helpers import act, ok
from tests.mqtt_broker import PANELS, MosquittoBroker, mqtt_users  # noqa: F401
from tests.paths import ROOT
from tests.piv_helpers import (
    PivService,
    ids_by_name,
    issue_piv_credential,
    piv_service,
)
from tests.waiting import until

SCENARIOS = ROOT / "simulators" / "panel" / "scenarios"
#: A whole stack (service, broker, panels) under a loaded machine may take this long.
STACK_WAIT = 15.0
HOLDERS = 8
#: How long the broker_restart hook keeps the broker down: long enough for the scenario's
#: card during the outage (YAML) to find every panel offline.
BROKER_DOWNTIME = 6.0

# Two panels of two doors, one reader a door, declared in id order so that a fresh database
# numbers them as the scenario files name them: p1 has doors and readers 1, 2; p2 3, 4.
POLICY = (
    """\
version: 1
groups:
  - name: staff
    members: [MEMBERS]
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
""".replace("MEMBERS", ", ".join(f"E{i}" for i in range(HOLDERS)))
    + "".join(
        f"""\
      - name: Door {d}
        into: Lobby
        panel: p{(d + 1) // 2}
        accepts: [pki_cak]
        readers: [{{name: Reader {d}, direction: in, contactless: true}}]
"""
        for d in range(1, 5)
    )
    + """\
access_levels:
  - name: Staff
    doors: [hq/Door 1, hq/Door 2, hq/Door 3, hq/Door 4]
    groups: [staff]
"""
)


@dataclass
class Stack:
    svc: PivService
    gateway: MqttGateway
    broker: MosquittoBroker
    sessions: async_sessionmaker[AsyncSession]
    ops: Operators
    cards: list[CardMaterial]
    credentials: list[dict[str, Any]]
    panel_ids: dict[str, int]
    fleet: list[SimulatedPanel] = field(default_factory=list)
    #: Each panel's last event seq when the fleet stopped (its buffer is closed then).
    last_seq: dict[str, int] = field(default_factory=dict)

    async def flush(self) -> None:
        await self.svc.app.state.accessd.decisions.store.flush()
        await self.gateway.events.flush()

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as s:
            return await s.scalar(statement)

    async def rows(self, statement: Any) -> list[Any]:
        async with self.sessions() as s:
            return list((await s.execute(statement)).all())


@pytest.fixture
def broker(mqtt_users: dict[str, str]) -> Iterator[MosquittoBroker]:  # noqa: F811
    """A broker of this test's own: a restart or the gateway's persistent session (queued
    messages) must not carry over to another test."""
    b = MosquittoBroker.with_users(mqtt_users, PANELS)
    b.start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
async def stack(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
    broker: MosquittoBroker,
    mqtt_users: dict[str, str],  # noqa: F811
) -> AsyncIterator[Stack]:
    async with piv_service(
        db_url,
        engine,
        bus,
        tmp_path,
        mqtt_gateway=True,
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        mqtt_username=SERVICE_USER,
        mqtt_password=mqtt_users[SERVICE_USER],
    ) as svc:
        client = svc.client
        cards, credentials = [], []
        for i in range(HOLDERS):
            card = svc.pki.issue_card(name=f"Holder {i}", algorithms={"9a": "p256", "9e": "p256"})
            _person, cred = await issue_piv_credential(client, ops, f"E{i}", card)
            cards.append(card)
            credentials.append(cred)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        state = svc.app.state.accessd
        await state.decisions.refresh()
        gateway = state.gateway
        assert gateway is not None
        await until(
            lambda: len(gateway.directory) == 2, STACK_WAIT, what="the gateway knows both panels"
        )
        async with sessions() as s:
            panel_ids = {p.name: p.id for p in (await s.scalars(select(Panel))).all()}
        yield Stack(svc, gateway, broker, sessions, ops, cards, credentials, panel_ids)


async def start_site_fleet(stack: Stack, tmp_path: Path, passwords: dict[str, str]) -> None:
    """The site's panels as the simulator's fleet, each with its cache and challenges."""
    fm = await stack.ops.headers("facility_manager")
    client = stack.svc.client
    doors = await ids_by_name(client, fm, "/v1/doors")
    readers = await ids_by_name(client, fm, "/v1/readers")
    # The scenario files name doors and readers by these ids.
    assert doors == {f"Door {d}": d for d in range(1, 5)}, doors
    assert readers == {f"Reader {d}": d for d in range(1, 5)}, readers
    layout = parse_layout(
        {
            "v": 1,
            "panels": [
                {"name": "p1", "doors": [{"door": 1, "readers": [1]}, {"door": 2, "readers": [2]}]},
                {"name": "p2", "doors": [{"door": 3, "readers": [3]}, {"door": 4, "readers": [4]}]},
            ],
        }
    )
    config = FleetConfig(
        host="127.0.0.1",
        port=stack.broker.port,
        site="hq",
        count=len(layout),
        state_dir=tmp_path / "panels",
        passwords=passwords,
        layout=layout,
        # Correctness, not latency: a loaded CI machine must not turn an online decision
        # into an offline one (bench/ measures the latency).
        decide_timeout=3.0,
        # No heartbeat lands between the report and the count of stored events.
        heartbeat_seconds=3600,
    )
    stack.fleet = await start_fleet(config)

    def ready() -> bool:
        return all(
            p.link.connected
            and p.session.cache.version is not None
            and all(p.session.challenges_held(r) > 0 for r in p.readers)
            for p in stack.fleet
        )

    await until(ready, STACK_WAIT, what="every panel connected, with its cache and challenges")


async def run_scenario(
    stack: Stack, tmp_path: Path, passwords: dict[str, str], name: str, hooks: dict[str, Hook]
) -> tuple[dict[str, Any], int]:
    """Runs ``name``.yaml; returns the report and how many events the panels held before."""
    await start_site_fleet(stack, tmp_path, passwords)
    before = sum(p.session.buffer.last_seq() for p in stack.fleet)
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    try:
        runner = Runner(stack.fleet, stack.cards, hooks, seed=scenario.get("seed", 1))
        report = await runner.run(scenario)
    finally:
        stack.last_seq = {p.name: p.session.buffer.last_seq() for p in stack.fleet}
        await stop_fleet(stack.fleet)
    assert report["errors"] == 0, report
    assert report["events_pending"] == 0, report
    assert report["events_uploaded"] == report["events_recorded"], report
    return report, before


async def panel_events_stored_once(stack: Stack, report: dict[str, Any], before: int) -> None:
    """Every event the panels recorded is stored, once: per panel the seqs 1..last, each
    one row, whatever was replayed or redelivered after an outage."""
    expected = report["events_recorded"] + before
    from_panels = select(func.count()).select_from(PanelEvent).where(PanelEvent.source == "panel")

    async def stored() -> int:
        await stack.flush()
        return int(await stack.scalar(from_panels))

    deadline = asyncio.get_running_loop().time() + 30
    count = await stored()
    while count < expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        count = await stored()
    assert count == expected, (count, expected, stack.gateway.counters)
    for name, last in stack.last_seq.items():
        seqs = [
            r.seq
            for r in await stack.rows(
                select(PanelEvent.seq)
                .where(PanelEvent.panel_id == stack.panel_ids[name])
                .where(PanelEvent.source == "panel")
                .order_by(PanelEvent.seq)
            )
        ]
        assert seqs == list(range(1, last + 1)), name


async def access_events(stack: Stack) -> list[Any]:
    return await stack.rows(
        select(PanelEvent.event_id, PanelEvent.panel_id, PanelEvent.reader_id, PanelEvent.data)
        .where(PanelEvent.type == "access")
        .order_by(PanelEvent.at)
    )


async def came_back(stack: Stack) -> set[int]:
    """The panels accessd saw come online more than once (gone meanwhile: the fleet's own
    stop at the end says offline but never online again)."""
    await stack.flush()
    online = await stack.rows(
        select(PanelEvent.panel_id, func.count())
        .where(PanelEvent.type == "panel_online")
        .group_by(PanelEvent.panel_id)
    )
    return {panel for panel, n in online if n >= 2}


def step(report: dict[str, Any], n: int) -> dict[str, Any]:
    """The report of the scenario's ``n``-th step (in the order of ``at``)."""
    found: dict[str, Any] = next(s for s in report["steps"] if s["step"] == n)
    return found


async def test_morning_rush_is_decided_online_and_every_decision_and_event_is_stored(
    stack: Stack,
    tmp_path: Path,
    mqtt_users: dict[str, str],  # noqa: F811
) -> None:
    report, before = await run_scenario(stack, tmp_path, mqtt_users, "morning_rush", {})
    assert (report["presented"], report["granted"]) == (HOLDERS, HOLDERS), report["reasons"]
    await panel_events_stored_once(stack, report, before)
    # Every decision accessd made is stored, as the panels' access events say.
    decisions = await stack.rows(
        select(DecisionEvent.granted, DecisionEvent.credential_id).where(
            DecisionEvent.source == "mqtt"
        )
    )
    assert len(decisions) == report["presented"] - report["offline"], decisions
    assert all(d.granted for d in decisions)
    assert {d.credential_id for d in decisions} <= {c["id"] for c in stack.credentials}
    access = await access_events(stack)
    assert len(access) == len({a.event_id for a in access}) == HOLDERS
    assert all(a.data["granted"] for a in access)
    assert sum(a.data["offline"] for a in access) == report["offline"]
    # The two REX exits opened their doors without a door alarm.
    assert not await stack.scalar(
        select(func.count())
        .select_from(PanelEvent)
        .where(PanelEvent.alarm.is_(True), PanelEvent.source == "panel")
    )
    # Every card online, idle readers included: the panels keep accessd's challenges fresh
    # (an expired pool once sent 6 of 8 cards offline while accessd was up).
    assert report["reasons"] == {"granted": HOLDERS}
    assert {d.credential_id for d in decisions} == {c["id"] for c in stack.credentials}


async def test_a_forced_door_raises_a_forced_alarm_that_accessd_stores(
    stack: Stack,
    tmp_path: Path,
    mqtt_users: dict[str, str],  # noqa: F811
) -> None:
    report, before = await run_scenario(stack, tmp_path, mqtt_users, "forced_door", {})
    assert (report["presented"], report["granted"], report["offline"]) == (1, 1, 0)
    await panel_events_stored_once(stack, report, before)
    forced = await stack.rows(
        select(PanelEvent.door_id, PanelEvent.alarm, PanelEvent.data)
        .where(PanelEvent.type == "forced")
        .order_by(PanelEvent.seq)
    )
    # Raised when pulled open, cleared when shut again; on p1's door 2 only.
    assert [(f.door_id, f.alarm, f.data["alarm"]) for f in forced] == [
        (2, True, True),
        (2, True, False),
    ]
    officer = await stack.ops.headers("security_officer")
    alarms = ok(await stack.svc.client.get("/v1/panel-events?alarm=true", headers=officer))
    assert "forced" in {a["type"] for a in alarms["items"]}


async def test_a_card_revoked_mid_day_is_refused_online_and_by_the_offline_cache(
    stack: Stack,
    tmp_path: Path,
    mqtt_users: dict[str, str],  # noqa: F811
) -> None:
    lost = stack.credentials[0]
    officer = await stack.ops.headers("security_officer")
    revoked: dict[str, datetime] = {}

    async def revoke() -> int:
        revoked["before"] = datetime.now(UTC)
        ok(await act(stack.svc.client, officer, lost["id"], "suspend", "card reported lost"))
        revoked["after"] = datetime.now(UTC)
        return 0

    report, before = await run_scenario(
        stack, tmp_path, mqtt_users, "lost_card_revoked", {"revoke": revoke}
    )
    await panel_events_stored_once(stack, report, before)
    assert step(report, 1)["exit_code"] == 0
    # Tried every second after the revocation, online: refused once it took effect.
    tries = step(report, 2)
    assert tries["presented"] == 10 and tries["offline"] == 0, tries
    assert tries["denied"] >= 1 and tries["last"] == "credential_not_active", tries
    # p1 cut off: its cache lost the card but still opens for the others.
    offline_tries = step(report, 4)
    assert (offline_tries["presented"], offline_tries["denied"], offline_tries["offline"]) == (
        2,
        2,
        2,
    ), offline_tries
    assert offline_tries["last"] == "offline_unknown_credential"
    other = step(report, 5)
    assert (other["granted"], other["offline"], other["last"]) == (1, 1, "offline_granted")

    # accessd's own record: granted up to the revocation, refused after it.
    decisions = await stack.rows(
        select(DecisionEvent.at, DecisionEvent.granted, DecisionEvent.reason)
        .where(DecisionEvent.credential_id == lost["id"])
        .order_by(DecisionEvent.at)
    )
    earlier = [d for d in decisions if d.at < revoked["before"]]
    later = [d for d in decisions if d.at > revoked["after"]]
    assert earlier and all(d.granted for d in earlier), decisions
    assert later and all(
        (d.granted, d.reason) == (False, "credential_not_active") for d in later
    ), decisions
    # And the doors' record of the offline refusals, uploaded after the partition.
    p1 = stack.panel_ids["p1"]
    offline = [a.data for a in await access_events(stack) if a.data["offline"]]
    assert [(d["granted"], d["reason"]) for d in offline] == [
        (False, "offline_unknown_credential"),
        (False, "offline_unknown_credential"),
        (True, "offline_granted"),
    ]
    assert await came_back(stack) >= {p1}


async def test_a_broker_restart_mid_rush_is_bridged_offline_and_no_event_is_lost(
    stack: Stack,
    tmp_path: Path,
    mqtt_users: dict[str, str],  # noqa: F811
) -> None:
    async def broker_restart() -> int:
        # In a thread: the broker's stop and start block, and the panels and the gateway
        # share this loop.
        await asyncio.to_thread(stack.broker.stop)
        await until(
            lambda: not any(p.link.connected for p in stack.fleet),
            STACK_WAIT,
            what="panels see it go",
        )
        await asyncio.sleep(BROKER_DOWNTIME)
        await asyncio.to_thread(stack.broker.start)
        return 0

    report, before = await run_scenario(
        stack, tmp_path, mqtt_users, "broker_restart", {"broker_restart": broker_restart}
    )
    assert step(report, 1)["exit_code"] == 0
    during = step(report, 2)
    assert (during["presented"], during["granted"], during["offline"]) == (3, 3, 3), during
    assert report["granted"] == report["presented"], report["reasons"]
    assert report["connected"] == len(stack.fleet)
    await panel_events_stored_once(stack, report, before)
    access = await access_events(stack)
    assert len(access) == len({a.event_id for a in access}) == report["presented"]
    assert sum(a.data["offline"] for a in access) == report["offline"]
    # Online decisions are accessd's; the offline ones reached it as events only.
    online = await stack.scalar(
        select(func.count()).select_from(DecisionEvent).where(DecisionEvent.source == "mqtt")
    )
    assert online >= report["presented"] - report["offline"]


async def test_a_network_partition_is_bridged_offline_and_no_event_is_lost(
    stack: Stack,
    tmp_path: Path,
    mqtt_users: dict[str, str],  # noqa: F811
) -> None:
    report, before = await run_scenario(stack, tmp_path, mqtt_users, "network_partition", {})
    during = step(report, 2)
    assert (during["presented"], during["granted"], during["offline"]) == (3, 3, 3), during
    assert report["granted"] == report["presented"], report["reasons"]
    assert report["offline"] >= 3
    await panel_events_stored_once(stack, report, before)
    access = await access_events(stack)
    assert len(access) == len({a.event_id for a in access}) == report["presented"]
    assert sum(a.data["offline"] for a in access) == report["offline"]
    # The broker published both panels' wills: accessd saw them go and come back.
    assert await came_back(stack) == set(stack.panel_ids.values())
