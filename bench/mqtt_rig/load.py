"""The load: requester panels sending `DecideRequest`s, to the gateway or, the same
payloads, to an echo, with a given number of requests outstanding (one: sequential)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from drivers.mqtt import messages as m
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.topics import DEADLINE_QOS, PanelTopics
from drivers.panel.mqtt_link import panel_mqtt_config

from .names import ECHO_ROOTS, ECHO_USER, SITE, card_uuid, requester_name

#: What a door one of a person's levels opens gets, of the requests.
AT_OWN_DOOR = 0.8
REPLY_TIMEOUT = 15.0

log = logging.getLogger("bench.decisions_mqtt")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Requester:
    """One requester panel: its login, its reader, and the people it sees most."""

    def __init__(self, cfg: dict[str, Any], index: int, password: str) -> None:
        self.index = index
        self.topics = PanelTopics(SITE, requester_name(index))
        self.reader = cfg["first_reader"] + index
        self.people: int = cfg["people"]
        self.stride: int = cfg["requesters"]
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
