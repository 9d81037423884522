"""The seam above the MQTT wire: what the gateway, the panels and the benches talk to.

`MqttLink` is a broker connection as its users need it: connect (and stay connected),
subscribe (remembered, made again after every reconnect), publish with acknowledgement,
and messages, connection changes and replies handed over on the event loop. Two
implementations: `drivers.mqtt.session.MqttSession` over a real broker, and
`drivers.mqtt.memory.MemoryBroker`'s links, which run the same logic above them in one
process without one. Request/reply (`request`, `respond`) is written once, here, on the
shared matcher (`drivers.mqtt.replies.Pending`).

A missing method fails when the link is made, not in the middle of a door transaction.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from drivers.errors import MqttTimeout
from drivers.listeners import Listeners
from drivers.mqtt.config import IncomingMessage
from drivers.mqtt.health import LinkHealth
from drivers.mqtt.replies import Pending, json_reply_id

log = logging.getLogger(__name__)

MessageHandler = Callable[[IncomingMessage], None]
ReplyId = Callable[[bytes], str | None]


class MqttLink(ABC):
    """A broker connection whose operations are coroutines and whose callbacks run on the
    event loop. Errors are `drivers.errors.MqttError` subclasses."""

    def __init__(
        self, *, reply_id: ReplyId = json_reply_id, client_id: str = "", broker: str = ""
    ) -> None:
        self._reply_id = reply_id
        #: Up or down since when, failed attempts, the last error (drivers.mqtt.health).
        self.health = LinkHealth(client_id, broker)
        self._connected = asyncio.Event()
        self._messages: Listeners[[IncomingMessage]] = Listeners("MQTT message", logger=log)
        self._ups: Listeners[[]] = Listeners("MQTT connected", logger=log)
        self._downs: Listeners[[str]] = Listeners("MQTT disconnected", logger=log)
        self._replies: Pending[tuple[str, str], IncomingMessage] = Pending()

    # -- what implementations provide -----------------------------------------------------

    @abstractmethod
    async def connect(self) -> None:
        """Connects; raises the first attempt's error (MqttUnreachable, MqttConnectRefused,
        MqttTimeout) and is then closed. Later drops are reconnected in the background."""

    @abstractmethod
    async def start(self) -> None:
        """Starts connecting and keeps trying; returns after the first attempt, whether it
        connected or not. Never raises for the broker's sake."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Disconnects cleanly (no last will) and stops reconnecting; waiting requests fail
        with MqttNotConnected. Safe to call more than once."""

    @abstractmethod
    async def partition(self, seconds: float) -> None:
        """Drops off the broker as a pulled cable would (the broker publishes the will),
        stays off for ``seconds``, then reconnects."""

    @abstractmethod
    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribes now, if connected, and after every reconnect from now on; returns the
        granted QoS of each filter ([] when not connected: they are made on connecting).
        Raises MqttSubscribeRefused for the first refused filter, which is not kept."""

    @abstractmethod
    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Unsubscribes (without waiting for the UNSUBACK) and stops renewing them."""

    @abstractmethod
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
        """Publishes; for QoS 1 and 2 returns once the broker acknowledged it. Raises
        MqttNotConnected, MqttTimeout or MqttPublishRefused. The MQTT 5 properties are
        dropped on 3.1.1, where the payload must carry what they would."""

    # -- what every link shares ------------------------------------------------------------

    @property
    def connected(self) -> asyncio.Event:
        """Set while connected with the subscriptions in place; cleared when it drops."""
        return self._connected

    def on_message(self, handler: MessageHandler) -> Callable[[], None]:
        """Calls ``handler`` on the event loop for every message that is not a reply to a
        pending `request`; returns its remover. Handlers must not block: start a task for
        slow work. An exception in one is logged, not raised."""
        return self._messages.add(handler)

    def on_connected(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls ``callback`` after every connection (reconnects too), once the remembered
        subscriptions are acknowledged; returns its remover."""
        return self._ups.add(callback)

    def on_disconnected(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Calls ``callback(reason)`` whenever the connection is lost or closed."""
        return self._downs.add(callback)

    async def request(
        self,
        topic: str,
        payload: bytes,
        *,
        reply_topic: str,
        request_id: str,
        # The reply deadline is part of the request, as in the panels' protocol, so the
        # parameter stays rather than asking callers for asyncio.timeout().
        timeout: float,  # noqa: ASYNC109
        qos: int = 1,
    ) -> IncomingMessage:
        """Publishes a request and returns its reply.

        The caller must be subscribed to ``reply_topic`` and must have put ``request_id``
        (and, for 3.1.1 peers, ``reply_topic``) into the payload itself. A reply is the
        first message on ``reply_topic`` whose correlation data, or else whose payload id,
        equals ``request_id``; it goes to the caller, not to the handlers. Raises
        MqttTimeout when none comes within ``timeout`` seconds."""
        send = self.publish(
            topic, payload, qos, response_topic=reply_topic, correlation_data=request_id.encode()
        )
        try:
            return await self._replies.ask((reply_topic, request_id), send, timeout)
        except TimeoutError as exc:
            raise MqttTimeout(f"no reply to request {request_id!r} in {timeout} s") from exc

    async def respond(
        self,
        request: IncomingMessage,
        payload: bytes,
        *,
        topic: str | None = None,
        qos: int = 1,
    ) -> None:
        """Answers ``request``: on its MQTT 5 response topic with its correlation data, or
        else on ``topic`` (the reply_to of its payload, or the panel's rsp topic)."""
        target = request.response_topic or topic
        if not target:
            raise ValueError(f"request on {request.topic!r} names no reply topic")
        await self.publish(target, payload, qos, correlation_data=request.correlation_data)

    # -- for implementations ---------------------------------------------------------------

    def _deliver(self, msg: IncomingMessage) -> None:
        """A message arrived: to the request waiting for it, else to the handlers."""
        if self._replies and self._resolve_reply(msg):
            return
        self._messages.emit(msg)

    def _resolve_reply(self, msg: IncomingMessage) -> bool:
        if msg.correlation_data is not None:
            key = (msg.topic, msg.correlation_data.decode("utf-8", "replace"))
            if self._replies.resolve(key, msg):
                return True
        request_id = self._reply_id(msg.payload)
        return request_id is not None and self._replies.resolve((msg.topic, request_id), msg)

    def _went_up(self) -> None:
        self.health.up()
        self._connected.set()
        self._ups.emit()

    def _went_down(self, reason: str) -> None:
        if not self._connected.is_set():
            return
        self.health.down(reason)
        self._connected.clear()
        self._downs.emit(reason)

    def _closing(self) -> None:
        """The link is being closed on purpose: no longer up, and no outage to report."""
        self.health.close()
        self._went_down("closed")
