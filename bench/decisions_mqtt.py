"""Benchmark: access decisions from simulated panels through Mosquitto and the MQTT gateway.

Targets, with 100,000 people in PostgreSQL and every decision stored: at 64
requests in flight at least 0.6x the throughput of a bare paho echo responder on the same
broker; sequential p99 under 2 ms; a revocation reaching 500 panels' caches in under 1 s.

Two processes on one private Mosquitto started from deploy/mosquitto/accessd.conf (a free
port, generated logins and ACL):

- the service side (this process): a scratch PostgreSQL database filled with COPY (people,
  security records, credentials, a site of requester panels and cache panels), the real
  DecisionService, card authentication and `MqttGateway` (shared subscription), and, as the
  baselines measured in the same run, two echo responders that answer every request with
  one fixed reply, each on its own shared subscription: a bare paho client as a paho user
  writes one (paho's network thread, the reply published from ``on_message``), and an
  `MqttClient` (paho driven from the event loop, as the gateway's is). The faster of the two
  is the figure the gateway is held to;
- the panel side (a child process): requester panels, each an `MqttClient` with its own
  panel login, sending `DecideRequest`s (card UUID plus the reader's word for ``pki_cak``,
  so no PKI crypto runs; four in five people at a door one of their levels opens) and
  matching replies by id; the same clients' payloads go to the echoes on ``bench/echo/…``
  and ``bench/paho/…``.

Measured, echo and gateway interleaved round by round, the median of the rounds kept:

1. throughput with ``--in-flight`` requests outstanding in total (64), and latency of one
   request at a time (p50, p99), requester side;
2. that every decision was stored: rows in ``decision_events`` against replies received;
3. revocation: ``--panels`` cache panels (500), each its own login subscribed to its
   ``cred/#``, hold the snapshot of a door all of them share; one credential of it is
   suspended through `accessd.services.credentials.transition` and the session committed
   (the bus event the gateway follows); the figure is until the last panel has decoded a
   delta removing that credential's hash. Both processes read CLOCK_MONOTONIC, which is
   system-wide on Linux; the panel side also reports times from a start signal it got
   before the service side took its clock (an upper bound, one pipe round trip more).

    python bench/decisions_mqtt.py [--people 100000] [--panels 500] [--in-flight 64]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]

The last line printed is JSON: {"decisions_per_s": …, "echo_per_s": …, "ratio": …,
"seq_p99_ms": …, "echo_seq_p99_ms": …, "revocation_500_panels_s": …}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import logging
import os
import random
import secrets
import socket
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SELF = Path(__file__).resolve()
ROOT = SELF.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.mqtt import messages as m  # noqa: E402
from drivers.mqtt.access import SERVICE_USER, mosquitto_acl, panel_username  # noqa: E402
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig  # noqa: E402
from drivers.mqtt.topics import DEADLINE_QOS, PanelTopics  # noqa: E402
from drivers.panel.cache import credential_hash  # noqa: E402
from drivers.panel.mqtt_link import panel_mqtt_config  # noqa: E402

SITE = "hq"
ECHO_USER = "bench-echo"
#: The baselines, each on its own topics and shared subscription (its group is its name):
#: the MqttClient echo and the bare paho echo.
ECHO_ROOTS = {"mqttclient": "bench/echo", "paho": "bench/paho"}
ECHOES = tuple(ECHO_ROOTS)
#: What a door one of a person's levels opens gets, of the requests.
AT_OWN_DOOR = 0.8
REPLY_TIMEOUT = 15.0
#: Cache panels per panel-side process, so that their decoding of a delta uses both cores.
PANELS_PER_PROCESS = 250

log = logging.getLogger("bench.decisions_mqtt")


def requester_name(i: int) -> str:
    return f"r{i:03d}"


def cache_name(j: int) -> str:
    return f"c{j:03d}"


def card_uuid(person: int) -> str:
    return str(uuid.UUID(int=person))


def fasc_n(person: int) -> str:
    return f"{person:050x}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# == the panel side (child process) =====================================================


class Requester:
    """One requester panel: its login, its reader, and the people it sees most."""

    def __init__(self, cfg: dict[str, Any], index: int, password: str) -> None:
        self.index = index
        self.topics = PanelTopics(SITE, requester_name(index))
        self.reader = cfg["first_reader"] + index
        self.people = cfg["people"]
        self.stride = cfg["requesters"]
        self.rnd = random.Random(index)
        host, port = "127.0.0.1", cfg["port"]
        self.panel = MqttClient(
            panel_mqtt_config(SITE, self.topics.panel, host=host, port=port, password=password)
        )
        # The same client code and settings, another login: the echo's topics.
        self.echo = MqttClient(
            MqttConfig(
                host=host,
                port=port,
                client_id=f"bench-echo-req-{index}",
                username=ECHO_USER,
                password=cfg["echo_password"],
                keepalive=15,
                timeout=5.0,
                max_inflight=64,
            )
        )
        self.echo_topics = {
            echo: (f"{root}/{index}/req", f"{root}/{index}/rsp")
            for echo, root in ECHO_ROOTS.items()
        }
        self.seq = 0

    async def connect(self) -> None:
        await self.panel.connect()
        await self.panel.subscribe([(self.topics.rsp, 1)])
        await self.echo.connect()
        await self.echo.subscribe([(rsp, 1) for _, rsp in self.echo_topics.values()])

    async def close(self) -> None:
        await self.panel.disconnect()
        await self.echo.disconnect()

    def person(self) -> int:
        # Person p holds the level of requester door p mod stride.
        if self.rnd.random() < AT_OWN_DOOR:
            count = (self.people - 1 - self.index) // self.stride + 1
            return self.index + 1 + self.stride * self.rnd.randrange(count)
        return self.rnd.randint(1, self.people)

    def payload(self) -> tuple[str, bytes]:
        self.seq += 1
        rid = f"{self.topics.panel}-{self.seq}"
        body = m.DecideRequest(
            id=rid,
            reader=self.reader,
            at=datetime.now(UTC),
            credential=m.CredentialRef(kind="card_uuid", value=card_uuid(self.person())),
            evidence=["pki_cak"],
            reply_to=self.topics.rsp,
        )
        return rid, m.encode(body)

    async def ask(self, target: str, rid: str, payload: bytes) -> tuple[float, IncomingMessage]:
        if target == "gateway":
            client, topic, rsp = self.panel, self.topics.leaf("req/decide"), self.topics.rsp
        else:
            client, (topic, rsp) = self.echo, self.echo_topics[target]
        start = time.perf_counter()
        reply = await client.request(
            topic,
            payload,
            reply_topic=rsp,
            request_id=rid,
            timeout=REPLY_TIMEOUT,
            qos=DEADLINE_QOS,
        )
        return time.perf_counter() - start, reply


async def drive(requesters: list[Requester], target: str, n: int, in_flight: int) -> dict[str, Any]:
    """``n`` requests with ``in_flight`` outstanding, spread over the requesters."""
    latencies: list[float] = []
    reasons: Counter[str] = Counter()
    sizes: list[int] = []
    errors = 0
    # Encoded before the clock starts: the load generator's own cost stays out of it.
    work = [[] for _ in range(in_flight)]  # type: list[list[tuple[str, bytes]]]
    for i in range(n):
        work[i % in_flight].append(requesters[i % in_flight % len(requesters)].payload())

    async def worker(k: int) -> None:
        nonlocal errors
        req = requesters[k % len(requesters)]
        for rid, payload in work[k]:
            try:
                took, reply = await req.ask(target, rid, payload)
            except Exception as exc:  # counted; a bench run goes on
                errors += 1
                log.warning("%s request failed: %s", target, exc)
                continue
            latencies.append(took)
            if len(sizes) < 100:
                sizes.append(len(reply.payload))
            reasons[json.loads(reply.payload).get("reason", "?")] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(in_flight)))
    seconds = time.perf_counter() - start
    return {
        "n": len(latencies),
        "errors": errors,
        "seconds": seconds,
        "per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "reasons": dict(reasons),
        "reply_bytes": statistics.mean(sizes) if sizes else 0,
    }


class CachePanel:
    """A panel that holds its retained snapshot and notes when a delta removes a hash."""

    def __init__(self, cfg: dict[str, Any], j: int, password: str) -> None:
        self.topics = PanelTopics(SITE, cache_name(j))
        self.client = MqttClient(
            panel_mqtt_config(
                SITE,
                self.topics.panel,
                host="127.0.0.1",
                port=cfg["port"],
                password=password,
                # A login waits behind the retained snapshots others are being sent.
                timeout=60.0,
            )
        )
        self.client.on_message(self._on_message)
        self.identifiers = [("card_uuid", cfg["target_uuid"]), ("fasc_n", cfg["target_fasc_n"])]
        self.targets: set[str] = set()
        self.entries = 0
        self.armed = False
        self.removed_at: float | None = None
        self.read_at: float | None = None
        self.holding = asyncio.Event()
        self.removed = asyncio.Event()

    def _on_message(self, msg: IncomingMessage) -> None:
        if msg.topic.endswith("/cred/snapshot"):
            if self.armed:
                return  # the refreshed retained copy behind the delta; not what is timed
            # Only the salt and hashes (json, not the models): 500 panels share two cores.
            snap = json.loads(msg.payload)
            salt = base64.b64decode(snap["salt"])
            held = {e["h"] for e in snap["entries"]}
            self.entries = len(held)
            self.targets = {credential_hash(salt, k, v) for k, v in self.identifiers} & held
            if self.targets:
                self.holding.set()
        elif msg.topic.endswith("/cred/delta") and self.armed and self.removed_at is None:
            delta = m.decode(m.CredDelta, msg.payload)
            if self.targets and self.targets <= set(delta.remove):
                self.removed_at = time.monotonic()
                self.read_at = msg.received
                self.removed.set()

    async def connect(self) -> None:
        await self.client.connect()
        await self.client.subscribe([(self.topics.leaf("cred/#"), 1)])


async def connect_all(caches: list[CachePanel], at_once: int = 20) -> None:
    """Connects them, ``at_once`` logins at a time (the broker hashes each password)."""
    gate = asyncio.Semaphore(at_once)

    async def one(c: CachePanel) -> None:
        async with gate:
            await c.connect()

    await asyncio.gather(*(one(c) for c in caches))


async def wait_all(events: list[asyncio.Event], seconds: float) -> None:
    """Until every event is set, or ``seconds`` passed (the caller counts which)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), seconds)


async def panel_side() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    def answer(doc: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    cfg = json.loads(await stdin.readline())
    requesters = [
        Requester(cfg, i, cfg["passwords"][panel_username(SITE, requester_name(i))])
        for i in range(cfg["requesters"] if cfg["drive"] else 0)
    ]
    await asyncio.gather(*(r.connect() for r in requesters))
    answer({"ready": len(requesters)})
    caches: list[CachePanel] = []
    t_signal = 0.0
    while line := await stdin.readline():
        cmd = json.loads(line)
        what = cmd["cmd"]
        if what == "run":
            answer(await drive(requesters, cmd["target"], cmd["n"], cmd["in_flight"]))
        elif what == "caches":
            caches = [
                CachePanel(cfg, j, cfg["passwords"][panel_username(SITE, cache_name(j))])
                for j in range(*cfg["cache_range"])
            ]
            start = time.perf_counter()
            await connect_all(caches)
            connected = time.perf_counter() - start
            await wait_all([c.holding for c in caches], 120)
            answer(
                {
                    "connected": len(caches),
                    "connect_s": connected,
                    "holding": sum(1 for c in caches if c.targets),
                    "entries": statistics.mean(c.entries for c in caches) if caches else 0,
                    "ready_s": time.perf_counter() - start,
                }
            )
        elif what == "arm":
            for c in caches:
                c.armed = True
            t_signal = time.monotonic()
            answer({"armed": True})
        elif what == "collect":
            t0 = cmd["t0"]
            await wait_all([c.removed for c in caches], cmd["timeout"])
            got = [c.removed_at - t0 for c in caches if c.removed_at is not None]
            signal = [c.removed_at - t_signal for c in caches if c.removed_at is not None]
            read = [c.read_at - t0 for c in caches if c.read_at is not None]
            answer(
                {
                    "arrived": len(got),
                    "of": len(caches),
                    "last_s": max(got) if got else None,
                    "median_s": statistics.median(got) if got else None,
                    "first_s": min(got) if got else None,
                    "last_read_s": max(read) if read else None,
                    "last_from_signal_s": max(signal) if signal else None,
                    "times": got,
                }
            )
        elif what == "quit":
            break
    await asyncio.gather(*(r.close() for r in requesters), *(c.client.disconnect() for c in caches))
    answer({"bye": True})


# == the service side ===================================================================


async def populate(url: str, people: int, requesters: int, panels: int, shared: int) -> None:
    """The site and its people, written with COPY: one facility, one requester door (and
    panel, reader, level and group) per requester panel, one door every cache panel has a
    reader of, and people 1..``shared`` in the group that opens it."""
    from population import insert_people  # bench/, on the path when a script runs

    from accessd.db import bulk
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.db.migrate import upgrade
    from accessd.models import (
        AccessGrant,
        AccessLevel,
        AccessLevelDoor,
        Area,
        Credential,
        Door,
        Facility,
        GroupMember,
        Panel,
        PersonGroup,
        Reader,
    )

    engine = make_engine(url)
    await upgrade(engine)
    now = datetime.now(UTC)
    stamp = {"version": 1, "created_at": now, "updated_at": now}
    shared_door = requesters + 1
    async with make_sessionmaker(engine)() as s:
        await bulk.insert_rows(
            s,
            Facility,
            [
                {
                    "id": 1,
                    "code": SITE,
                    "name": "Headquarters",
                    "timezone": "America/New_York",
                    "security_level": 3,
                    "address": "",
                    "threat_level": "normal",
                }
                | stamp
            ],
        )
        await bulk.insert_rows(
            s,
            Area,
            [
                {
                    "id": 10,
                    "facility_id": 1,
                    "parent_id": None,
                    "name": "Lobby",
                    "area_class": "controlled",
                    "is_scif": False,
                    "programs": [],
                    "min_eligibility": "none",
                    "two_person_window_s": 0,
                    "escort_required": False,
                    "escort_window_s": 30,
                    "anti_passback": "none",
                    "apb_reset_s": 0,
                }
                | stamp
            ],
        )
        await bulk.insert_rows(
            s,
            Panel,
            [
                {"id": i + 1, "facility_id": 1, "name": requester_name(i), "transport": "mqtt"}
                | stamp
                for i in range(requesters)
            ]
            + [
                {
                    "id": requesters + j + 1,
                    "facility_id": 1,
                    "name": cache_name(j),
                    "transport": "mqtt",
                }
                | stamp
                for j in range(panels)
            ],
        )
        door = {"area_id": 10, "from_area_id": None, "mode": "card_only", "unlock_seconds": 5}
        await bulk.insert_rows(
            s,
            Door,
            [
                door | stamp | {"id": i + 1, "name": f"Door {i}", "panel_id": i + 1, "accepts": []}
                for i in range(requesters)
            ]
            + [
                door
                | stamp
                | {"id": shared_door, "name": "Shared door", "panel_id": None, "accepts": []}
            ],
        )
        reader = {
            "direction": "in",
            "contact": False,
            "contactless": True,
            "pin_pad": False,
            "biometric": False,
        }
        await bulk.insert_rows(
            s,
            Reader,
            [
                reader | stamp | {"id": i + 1, "door_id": i + 1, "panel_id": None, "name": f"R{i}"}
                for i in range(requesters)
            ]
            + [
                reader
                | stamp
                | {
                    "id": requesters + j + 1,
                    "door_id": shared_door,
                    "panel_id": requesters + j + 1,
                    "name": f"Shared reader {j}",
                }
                for j in range(panels)
            ],
        )
        levels = requesters + 1
        await bulk.insert_rows(
            s,
            AccessLevel,
            [
                {"id": lv, "name": f"Level {lv}", "schedule_id": None, "description": ""} | stamp
                for lv in range(1, levels + 1)
            ],
        )
        await bulk.insert_rows(
            s, AccessLevelDoor, [{"level_id": lv, "door_id": lv} for lv in range(1, levels + 1)]
        )
        await bulk.insert_rows(
            s,
            PersonGroup,
            [
                {"id": g, "name": f"group-{g}", "description": ""} | stamp
                for g in range(1, levels + 1)
            ],
        )
        await bulk.insert_rows(
            s,
            AccessGrant,
            [
                {"id": g, "level_id": g, "group_id": g, "person_id": None}
                for g in range(1, levels + 1)
            ],
        )
        await insert_people(s, people, stamp, eligibility="secret")
        await bulk.insert_rows(
            s,
            GroupMember,
            [{"group_id": (p - 1) % requesters + 1, "person_id": p} for p in range(1, people + 1)]
            + [{"group_id": levels, "person_id": p} for p in range(1, shared + 1)],
        )
        await bulk.insert_rows(
            s,
            Credential,
            (
                {
                    "id": p,
                    "person_id": p,
                    "kind": "piv",
                    "state": "active",
                    "fasc_n": fasc_n(p),
                    "card_uuid": card_uuid(p),
                    "badge_number": None,
                    "valid_from": date(2024, 1, 1),
                    "valid_until": date(2030, 1, 1),
                }
                | stamp
                for p in range(1, people + 1)
            ),
        )
        await s.commit()
    await engine.dispose()


def echo_subscription(echo: str) -> str:
    return f"$share/{echo}/{ECHO_ROOTS[echo]}/+/req"


def broker_for(passwords: dict[str, str], panels: list[tuple[str, str]]) -> Any:
    """Mosquitto from the project's config with the generated ACL, plus the echoes' login
    confined to ``bench/echo/#`` and ``bench/paho/#``."""
    from drivers.mqtt.access import hash_password
    from drivers.mqtt.access import password_file as make_password_file
    from tests.mqtt_broker import MosquittoBroker

    hashes = {user: hash_password(pw) for user, pw in passwords.items()}
    acl = mosquitto_acl(panels, SERVICE_USER)
    acl += f"\nuser {ECHO_USER}\n" + "".join(
        f"topic readwrite {root}/#\ntopic read {echo_subscription(echo)}\n"
        for echo, root in ECHO_ROOTS.items()
    )
    return MosquittoBroker(make_password_file(hashes), acl)


class PahoEcho:
    """The bare paho echo responder, written as a paho user writes one: paho's own
    network thread (``loop_start``), a shared subscription, and each request answered from
    ``on_message`` with the fixed reply on its MQTT 5 response topic and correlation data.
    TCP_NODELAY is set on its socket as on the gateway's, so that Nagle's algorithm does not
    count against the baseline."""

    def __init__(self, port: int, password: str, reply: bytes) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = port
        self.reply = reply
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-paho-echo-responder",
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(ECHO_USER, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(echo_subscription("paho"), qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        asked = msg.properties
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = asked.CorrelationData
        client.publish(asked.ResponseTopic, self.reply, qos=DEADLINE_QOS, properties=props)

    async def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not await asyncio.to_thread(self.subscribed.wait, 10):
            raise RuntimeError("the paho echo did not subscribe")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Child:
    """The panel side, spoken to in JSON lines over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, doc: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        await self.proc.stdin.drain()

    async def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the panel side exited")
        doc: dict[str, Any] = json.loads(line)
        return doc

    async def ask(self, doc: dict[str, Any]) -> dict[str, Any]:
        await self.send(doc)
        return await self.recv()


def say(text: str) -> None:
    print(text, flush=True)


async def service_side(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from accessd.authn.factory import build_card_authentication
    from accessd.config import Settings
    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.decisions.service import DecisionService
    from accessd.events import EventBus, session_info
    from accessd.gateway.service import gateway_from_settings
    from accessd.heap import freeze_long_lived
    from accessd.models import DecisionEvent
    from accessd.services.actors import SYSTEM
    from accessd.services.credentials import transition
    from policies import lifecycle as lc

    panels = [(SITE, requester_name(i)) for i in range(args.requesters)] + [
        (SITE, cache_name(j)) for j in range(args.panels)
    ]
    passwords = {SERVICE_USER: secrets.token_urlsafe(32), ECHO_USER: secrets.token_urlsafe(32)}
    passwords |= {panel_username(s, p): secrets.token_urlsafe(32) for s, p in panels}
    broker = broker_for(passwords, panels)
    broker.start()
    engine = make_engine(url)
    bus = EventBus()
    sessions = make_sessionmaker(engine)
    sessions.configure(info=session_info(bus))
    settings = Settings(
        database_url=url,
        mqtt_gateway=True,
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        mqtt_username=SERVICE_USER,
        mqtt_password=passwords[SERVICE_USER],
        mqtt_client_id="accessd-bench",
        gc_freeze=True,  # as `accessd serve` runs (accessd.heap)
    )
    decisions = DecisionService(sessions, bus)
    cards = build_card_authentication(settings, sessions)
    gateway = gateway_from_settings(settings, sessions, decisions, cards.authenticator, bus)
    echo = MqttClient(
        MqttConfig(
            host="127.0.0.1",
            port=broker.port,
            client_id="bench-echo-responder",
            username=ECHO_USER,
            password=passwords[ECHO_USER],
        )
    )
    fixed = m.encode(
        m.DecideReply(
            id="r000-1000000",
            granted=True,
            reason="granted",
            unlock_seconds=5,
            door=1,
            trail=["reader 1 at door 1", "credential 1 of person 1", "level 1 opens door 1"],
        )
    )
    echo_tasks: set[asyncio.Task[None]] = set()

    def on_echo(msg: IncomingMessage) -> None:
        # As the gateway does: a task per request, the reply on its response topic.
        task = asyncio.create_task(echo.respond(msg, fixed, qos=DEADLINE_QOS))
        echo_tasks.add(task)
        task.add_done_callback(echo_tasks.discard)

    echo.on_message(on_echo)
    paho_echo = PahoEcho(broker.port, passwords[ECHO_USER], fixed)
    children: list[Child] = []
    result: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        await decisions.start()
        snap = decisions.snapshot
        say(
            f"decision snapshot: {len(snap.people):,} people, {len(snap.credentials):,} "
            f"credentials in {decisions.build_seconds:.2f} s"
        )
        await cards.start()
        t1 = time.perf_counter()
        await gateway.start()
        freeze_long_lived("decision snapshot")  # as the app's lifespan does
        gw_start = time.perf_counter() - t1
        say(
            f"gateway start: {gw_start:.2f} s for {len(gateway.directory)} panels "
            f"({gateway.caches.snapshots_sent} cache snapshots built and sent, the heap frozen)"
        )
        result["gateway_start_s"] = gw_start
        await echo.connect()
        await echo.subscribe([(echo_subscription("mqttclient"), 1)])
        await paho_echo.start()

        common = {
            "port": broker.port,
            "people": args.people,
            "requesters": args.requesters,
            "first_reader": 1,
            "passwords": passwords,
            "echo_password": passwords[ECHO_USER],
            "target_uuid": card_uuid(1),
            "target_fasc_n": fasc_n(1),
        }
        step = PANELS_PER_PROCESS
        ranges = [(a, min(a + step, args.panels)) for a in range(0, args.panels, step)]
        for k, span in enumerate([(0, 0), *ranges]):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SELF),
                "--panel-side",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**24,
            )
            children.append(Child(proc))
            await children[-1].send(common | {"drive": k == 0, "cache_range": span})
        child = children[0]
        fleets = children[1:]
        ready = await child.recv()
        for f in fleets:
            await f.recv()
        say(f"panel side: {ready['ready']} requester panels connected (and as many echo clients)")
        say(f"set-up took {time.perf_counter() - t0:.1f} s")

        for target in (*ECHOES, "gateway"):
            await child.ask({"cmd": "run", "target": target, "n": 2000, "in_flight": 64})
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        pauses = GcPauses()
        for rnd in range(args.rounds):
            for mode, n, flight in (
                ("flight", args.requests, args.in_flight),
                ("seq", args.seq_requests, 1),
            ):
                for target in (*ECHOES, "gateway"):
                    # Each run starts quiet: the decisions of the run before are written.
                    await decisions.store.flush()
                    pauses.clear()
                    r = await child.ask(
                        {"cmd": "run", "target": target, "n": n, "in_flight": flight}
                    )
                    runs.setdefault((target, mode), []).append(r)
                    backlog = decisions.store.queued
                    say(
                        f"round {rnd + 1} {target:>10} {mode:>6} x{flight:<3}: "
                        f"{r['per_s']:8,.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                        f"p99 {r['p99_ms']:.2f} ms  ({r['n']} replies, {r['errors']} errors)"
                        f"  service GC: {pauses.summary()}"
                        + (f"; {backlog:,} decisions not yet stored" if target == "gateway" else "")
                    )

        def med(target: str, mode: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[(target, mode)])

        # The baseline is the faster echo, each figure on its own: never the kinder one.
        def best(mode: str, key: str, pick: Any) -> float:
            return float(pick(med(t, mode, key) for t in ECHOES))

        gw_reasons: Counter[str] = Counter()
        replies = 0
        for (target, _), rs in runs.items():
            if target == "gateway":
                for r in rs:
                    gw_reasons.update(r["reasons"])
        replies = sum(gw_reasons.values())
        granted = gw_reasons.get("granted", 0)
        say(
            f"gateway replies: {granted / max(replies, 1):.0%} granted; "
            f"reasons {dict(gw_reasons.most_common(4))}; "
            f"reply sizes: gateway {runs[('gateway', 'flight')][0]['reply_bytes']:.0f} B, "
            f"echo {len(fixed)} B"
        )
        result |= {
            "decisions_per_s": med("gateway", "flight", "per_s"),
            "echo_per_s": best("flight", "per_s", max),
            "seq_p50_ms": med("gateway", "seq", "p50_ms"),
            "seq_p99_ms": med("gateway", "seq", "p99_ms"),
            "echo_seq_p50_ms": best("seq", "p50_ms", min),
            "echo_seq_p99_ms": best("seq", "p99_ms", min),
            "flight_p99_ms": med("gateway", "flight", "p99_ms"),
            "echo_flight_p99_ms": best("flight", "p99_ms", min),
            "baselines": {
                t: {
                    "per_s": round(med(t, "flight", "per_s")),
                    "flight_p99_ms": round(med(t, "flight", "p99_ms"), 2),
                    "seq_p50_ms": round(med(t, "seq", "p50_ms"), 3),
                    "seq_p99_ms": round(med(t, "seq", "p99_ms"), 3),
                }
                for t in ECHOES
            },
        }

        # Every decision stored: the rows against what the panels got back.
        await decisions.store.flush()
        async with sessions() as s:
            rows = await s.scalar(
                select(func.count())
                .select_from(DecisionEvent)
                .where(DecisionEvent.source == "mqtt")
            )
        answered = int(gateway.counters["decisions"])
        sent_total = sum(
            r["n"] + r["errors"] for (t, _), rs in runs.items() if t == "gateway" for r in rs
        )
        say(
            f"stored: {rows:,} decision events for {answered:,} gateway decisions "
            f"({sent_total + 2000:,} requests sent incl. warm-up); store dropped "
            f"{decisions.store.dropped}, failures {decisions.store.failures}; "
            f"gateway counters {dict(gateway.counters)}"
        )
        result["stored_ok"] = rows == answered == sent_total + 2000

        # Revocation to every cache panel.
        cs = await asyncio.gather(*(f.ask({"cmd": "caches"}) for f in fleets))
        say(
            f"cache panels in {len(fleets)} processes: "
            f"{sum(c['connected'] for c in cs)} connected in "
            f"{max(c['connect_s'] for c in cs):.1f} s, {sum(c['holding'] for c in cs)} hold "
            f"the credential (about {statistics.mean(c['entries'] for c in cs):.0f} entries "
            f"each), ready after {max(c['ready_s'] for c in cs):.1f} s"
        )
        await asyncio.gather(*(f.ask({"cmd": "arm"}) for f in fleets))
        deltas_before = gateway.caches.deltas_sent
        start = time.monotonic()
        async with sessions() as s:
            await transition(s, SYSTEM, 1, lc.Action.SUSPEND, reason="bench: card reported lost")
            await s.commit()
        committed = time.monotonic() - start
        parts = await asyncio.gather(
            *(f.ask({"cmd": "collect", "t0": start, "timeout": 30}) for f in fleets)
        )
        times = [x for p in parts for x in p["times"]]
        rev = {
            "arrived": len(times),
            "of": sum(p["of"] for p in parts),
            "first_s": min(times, default=float("nan")),
            "median_s": statistics.median(times) if times else float("nan"),
            "last_s": max(times, default=float("nan")),
            "last_read_s": max((p["last_read_s"] or 0.0) for p in parts),
            "last_from_signal_s": max((p["last_from_signal_s"] or 0.0) for p in parts),
        }
        say(
            f"revocation: committed in {committed * 1000:.1f} ms; delta removing it decoded "
            f"by {rev['arrived']}/{rev['of']} panels; first {rev['first_s']:.3f} s, "
            f"median {rev['median_s']:.3f} s, last {rev['last_s']:.3f} s "
            f"(read off the socket by {rev['last_read_s']:.3f} s; "
            f"from the panel side's start signal {rev['last_from_signal_s']:.3f} s); "
            f"gateway sent {gateway.caches.deltas_sent - deltas_before} deltas"
        )
        result["revocation_s"] = rev["last_s"] if rev["arrived"] == rev["of"] else None
        result["revocation_panels"] = rev["of"]
        for c in children:
            await c.ask({"cmd": "quit"})
            await c.proc.wait()
    finally:
        # The broker and children go even when stopping the service fails.
        try:
            await echo.disconnect()
            paho_echo.stop()
            await gateway.stop()
            await cards.stop()
            await decisions.stop()
            await engine.dispose()
        finally:
            for c in children:
                if c.proc.returncode is None:
                    c.proc.kill()
                    await c.proc.wait()
            broker.close()
    return result


class GcPauses:
    """The garbage collector's pauses in this process (the service side), from gc.callbacks."""

    def __init__(self) -> None:
        self._start = 0.0
        self._gen = 0
        self.seen: list[tuple[int, float]] = []
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seen.append((info["generation"], (time.perf_counter() - self._start) * 1e3))

    def clear(self) -> None:
        self.seen.clear()

    def summary(self) -> str:
        if not self.seen:
            return "none"
        # On two shared cores a pass can also be a pass the OS preempted: the longest full
        # one apart from the longest of all tells which kind of pass stalls the loop.
        longest = max(ms for _, ms in self.seen)
        full = [ms for g, ms in self.seen if g == 2]
        longest_full = f", longest {max(full):.1f} ms" if full else ""
        return (
            f"{len(self.seen)} collections ({len(full)} full{longest_full}), "
            f"longest {longest:.1f} ms"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pg",
        default=os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--panels", type=int, default=500, help="cache panels for the revocation")
    ap.add_argument("--shared-people", type=int, default=1000, help="people the shared door opens")
    ap.add_argument("--requesters", type=int, default=64, help="requesting panels (clients)")
    ap.add_argument("--in-flight", type=int, default=64, help="requests outstanding in total")
    ap.add_argument("--requests", type=int, default=20_000, help="per throughput run")
    ap.add_argument("--seq-requests", type=int, default=3000, help="per sequential run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--panel-side", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.panel_side:
        asyncio.run(panel_side())
        return
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import asyncpg

    dbname = f"accessd_bench_{uuid.uuid4().hex[:8]}"
    base = args.pg.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + dbname

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(args.pg)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{dbname}"'))
    try:
        t0 = time.perf_counter()
        asyncio.run(populate(url, args.people, args.requesters, args.panels, args.shared_people))
        say(
            f"populated {args.people:,} people and credentials, {args.requesters} requester "
            f"panels, {args.panels} cache panels in {time.perf_counter() - t0:.1f} s"
        )
        res = asyncio.run(service_side(args, url))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    ratio = res["decisions_per_s"] / res["echo_per_s"]
    say(
        f"decisions {res['decisions_per_s']:,.0f}/s vs echo {res['echo_per_s']:,.0f}/s at "
        f"{args.in_flight} in flight: {ratio:.2f}x (target >= 0.6); sequential p99 "
        f"{res['seq_p99_ms']:.2f} ms vs echo {res['echo_seq_p99_ms']:.2f} ms (target < 2); "
        f"revocation to {res['revocation_panels']} panels "
        f"{res['revocation_s'] if res['revocation_s'] is None else round(res['revocation_s'], 3)}"
        f" s (target < 1); every decision stored: {res['stored_ok']}"
    )
    print(
        json.dumps(
            {
                "baseline": "the faster of a bare paho echo and an MqttClient echo, figure by "
                "figure, same broker, same run",
                "baselines": res["baselines"],
                "gateway_start_s": round(res["gateway_start_s"], 2),
                "seq_p50_ms": round(res["seq_p50_ms"], 3),
                "echo_seq_p50_ms": round(res["echo_seq_p50_ms"], 3),
                "flight_p99_ms": round(res["flight_p99_ms"], 2),
                "echo_flight_p99_ms": round(res["echo_flight_p99_ms"], 2),
                "every_decision_stored": res["stored_ok"],
            }
        )
    )
    print(
        json.dumps(
            {
                "decisions_per_s": round(res["decisions_per_s"]),
                "echo_per_s": round(res["echo_per_s"]),
                "ratio": round(ratio, 3),
                "seq_p99_ms": round(res["seq_p99_ms"], 3),
                "echo_seq_p99_ms": round(res["echo_seq_p99_ms"], 3),
                "revocation_500_panels_s": (
                    None if res["revocation_s"] is None else round(res["revocation_s"], 3)
                ),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
