"""An MQTT broker in memory, and links to it: what `MemoryLine` is for OSDP.

`MemoryBroker.pair()` gives two `MemoryLink`s on one new broker (say, the service's and a
panel's); `MemoryBroker.link()` adds more. A link is an `MqttLink`, so everything above the
wire (the gateway, the panel session, request/reply) runs over it unchanged and without a
broker process. The broker keeps what the panel protocol leans on: topic filters with
``+`` and ``#``, shared subscriptions (``$share/<group>/<filter>``, dealt out in turn),
retained messages (an empty one clears), the last will of a link that drops without a
DISCONNECT, MQTT 5 response topic and correlation data (dropped for a 3.1.1 link, as a
real broker does). Delivery is on a later loop pass, as over a socket. Not modelled: QoS
(nothing is lost), ACLs, persistent sessions; tests against Mosquitto cover the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers.errors import MqttNotConnected
from drivers.mqtt.config import IncomingMessage, Will
from drivers.mqtt.link import MqttLink


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether the subscription filter ``pattern`` matches ``topic`` (MQTT 3.1.1, 4.7)."""
    if topic.startswith("$") and not pattern.startswith("$"):
        return False  # wildcards never match the broker's own $ topics
    want = pattern.split("/")
    have = topic.split("/")
    for i, part in enumerate(want):
        if part == "#":
            return True
        if i >= len(have) or (part != "+" and part != have[i]):
            return False
    return len(want) == len(have)


@dataclass(frozen=True, slots=True)
class _Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None
    correlation_data: bytes | None


class MemoryBroker:
    """Routes what its links publish to the links whose filters match."""

    def __init__(self) -> None:
        self.links: list[MemoryLink] = []
        self.retained: dict[str, _Published] = {}
        #: Messages routed, for tests that count traffic.
        self.published = 0
        self._turns: dict[tuple[str, str], itertools.count[int]] = {}

    @classmethod
    def pair(cls) -> tuple[MemoryLink, MemoryLink]:
        """Two links on a new broker; the broker is ``first.broker``."""
        broker = cls()
        return broker.link("a"), broker.link("b")

    def link(
        self, client_id: str, *, will: Will | None = None, protocol: Literal[3, 5] = 5
    ) -> MemoryLink:
        made = MemoryLink(self, client_id, will=will, protocol=protocol)
        self.links.append(made)
        return made

    def _route(self, message: _Published) -> None:
        self.published += 1
        if message.retain:
            if message.payload:
                self.retained[message.topic] = message
            else:
                self.retained.pop(message.topic, None)
        shared: dict[tuple[str, str], list[MemoryLink]] = {}
        for link in self.links:
            if not link.connected.is_set():
                continue
            hit = False
            for pattern in link.filters:
                if pattern.startswith("$share/"):
                    _, group, inner = pattern.split("/", 2)
                    if topic_matches(inner, message.topic):
                        shared.setdefault((group, inner), []).append(link)
                elif topic_matches(pattern, message.topic):
                    hit = True
            if hit:
                link._receive(message, retained=False)
        for key, members in shared.items():
            turn = next(self._turns.setdefault(key, itertools.count()))
            members[turn % len(members)]._receive(message, retained=False)

    def _send_retained(self, link: MemoryLink, patterns: Iterable[str]) -> None:
        for pattern in patterns:
            if pattern.startswith("$share/"):
                continue  # shared subscriptions get no retained messages (MQTT 5, 4.8.2)
            for message in list(self.retained.values()):
                if topic_matches(pattern, message.topic):
                    link._receive(message, retained=True)


class MemoryLink(MqttLink):
    """One client of a `MemoryBroker`; made by `MemoryBroker.link`."""

    def __init__(
        self,
        broker: MemoryBroker,
        client_id: str,
        *,
        will: Will | None = None,
        protocol: Literal[3, 5] = 5,
    ) -> None:
        super().__init__(client_id=client_id, broker="memory")
        self.broker = broker
        self.client_id = client_id
        self.will = will
        self.protocol = protocol
        #: Subscription filters and their QoS; kept over drops, as a session's would be.
        self.filters: dict[str, int] = {}
        self._closed = False
        self._allowed = True

    def __repr__(self) -> str:
        return f"MemoryLink({self.client_id!r}, connected={self.connected.is_set()})"

    async def connect(self) -> None:
        if self._closed:
            raise MqttNotConnected("the link disconnected")
        self.health.begin()
        self._up()

    async def start(self) -> None:
        await self.connect()

    async def disconnect(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing()
        self._replies.fail_all(MqttNotConnected("the client disconnected"))

    async def partition(self, seconds: float) -> None:
        self.drop()
        self._allowed = False
        try:
            await asyncio.sleep(seconds)
        finally:
            self._allowed = True
            if not self._closed:
                self._up()

    def drop(self, reason: str = "connection lost") -> None:
        """The connection ends without a DISCONNECT: the broker publishes the will."""
        if not self.connected.is_set():
            return
        self._went_down(reason)
        if self.will is not None:
            will = self.will
            self._post(_Published(will.topic, will.payload, will.qos, will.retain, None, None))

    def reconnect(self) -> None:
        """Comes back after `drop` (subscriptions in place, retained messages sent again)."""
        if not self._closed and self._allowed:
            self._up()

    def _up(self) -> None:
        if self.connected.is_set():
            return
        self._went_up()
        if self.filters:
            # On a later pass, as a broker's would arrive after the CONNACK.
            loop = asyncio.get_running_loop()
            loop.call_soon(self.broker._send_retained, self, list(self.filters))

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        subs = list(subscriptions)
        for topic, qos in subs:
            if qos not in (0, 1, 2):
                raise ValueError(f"QoS {qos} for {topic!r}")
        if self._closed:
            raise MqttNotConnected("the link disconnected")
        self.filters.update(subs)
        if not self.connected.is_set():
            return []
        loop = asyncio.get_running_loop()
        loop.call_soon(self.broker._send_retained, self, [topic for topic, _ in subs])
        return [qos for _, qos in subs]

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.filters.pop(topic, None)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        if not self.connected.is_set():
            raise MqttNotConnected("the link is not connected")
        if self.protocol == 3:
            response_topic = correlation_data = None
        self._post(_Published(topic, payload, qos, retain, response_topic, correlation_data))

    def _post(self, message: _Published) -> None:
        asyncio.get_running_loop().call_soon(self.broker._route, message)

    def _receive(self, message: _Published, *, retained: bool) -> None:
        v5 = self.protocol == 5
        self._deliver(
            IncomingMessage(
                topic=message.topic,
                payload=message.payload,
                qos=message.qos,
                retain=retained,
                response_topic=message.response_topic if v5 else None,
                correlation_data=message.correlation_data if v5 else None,
                received=time.monotonic(),
            )
        )
