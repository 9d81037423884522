"""A broker connection that stays up: reconnects with backoff and keeps its subscriptions.

`MqttSession` is the `MqttLink` over a real broker. It owns one `MqttConnection` and one
task that opens it, and opens it again whenever it drops: after ``reconnect_min_delay``
seconds, doubled after each failed attempt up to ``reconnect_max_delay``. Subscriptions are
remembered from the first call on, even one made before any connection, and made again on
every connection into a session the broker no longer holds; `connected` is set only once
they are acknowledged, so a message published after it cannot slip past a SUBSCRIBE the
broker has not handled yet.

Two ways in: `connect` for a caller that must know the broker is there (a bench or a
test: the first attempt's error is raised), `start` for one that must come up without it
(a panel, and the service's gateway: it returns after the first attempt and keeps trying).
`health` (`drivers.mqtt.health`) says whether it is up and since when, counts the failed
attempts and logs an outage once rather than every attempt. `partition` cuts the connection
without a DISCONNECT and stays off for a while: the simulator's network partition.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable, Sequence

from drivers.errors import MqttError, MqttNotConnected, MqttSubscribeRefused
from drivers.mqtt.config import MqttConfig
from drivers.mqtt.connection import MqttConnection
from drivers.mqtt.link import MqttLink, ReplyId
from drivers.mqtt.replies import json_reply_id
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)


class MqttSession(MqttLink):
    """See the module docstring. Not reusable after `disconnect`."""

    def __init__(self, config: MqttConfig, *, reply_id: ReplyId = json_reply_id) -> None:
        super().__init__(
            reply_id=reply_id, client_id=config.client_id, broker=f"{config.host}:{config.port}"
        )
        self.config = config
        #: The type name of the last attempt's error, None after a success.
        self.last_error: str | None = None
        self._connection = MqttConnection(
            config, on_message=self._deliver, on_lost=self._connection_lost
        )
        self._subscriptions: dict[str, int] = {}
        self._tasks = TaskSet(f"mqtt {config.client_id}", logger=log)
        self._started = False
        self._closed = False
        self._connections = 0  # accepted CONNACKs, to renew on the first one in any case
        self._lost = asyncio.Event()
        self._allowed = asyncio.Event()  # cleared while partitioned
        self._allowed.set()
        self._first_attempt = asyncio.Event()
        self._backoff = float(config.reconnect_min_delay)

    def __repr__(self) -> str:
        return f"MqttSession({self.config.client_id!r}, connected={self.connected.is_set()})"

    def socket(self) -> socket.socket | None:
        """The current socket, for inspection (getsockopt) only; None when there is none."""
        return self._connection.socket()

    # -- connecting -----------------------------------------------------------------------

    async def connect(self) -> None:
        self._begin()
        try:
            await self._attempt()
        except BaseException:
            await self._close()
            raise
        self._tasks.spawn(self._stay_connected(), name=f"{self.config.client_id} reconnect")

    async def start(self) -> None:
        self._begin()
        self._tasks.spawn(self._run(), name=f"{self.config.client_id} connect")
        await self._first_attempt.wait()

    async def disconnect(self) -> None:
        if not self._closed:
            await self._close()

    async def partition(self, seconds: float) -> None:
        self._allowed.clear()
        self._connection.abort()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._backoff = float(self.config.reconnect_min_delay)
            self._allowed.set()

    def _begin(self) -> None:
        if self._started or self._closed:
            raise MqttError("a session connects once; make a new one after disconnect()")
        self._started = True
        self.health.begin()

    async def _attempt(self) -> None:
        """One connection: CONNACK, then the remembered subscriptions, then up."""
        self._lost.clear()
        present = await self._connection.open()
        if self._subscriptions and (self._connections == 0 or not present):
            await self._renew()
        self._connections += 1
        self.last_error = None
        self._backoff = float(self.config.reconnect_min_delay)
        self._went_up()

    async def _renew(self) -> None:
        subs = list(self._subscriptions.items())
        codes = await self._connection.subscribe(subs)
        if self._connections:
            log.info("%s: renewed %d subscriptions", self.config.client_id, len(subs))
        for (topic, _qos), code in zip(subs, codes, strict=False):
            if code.is_failure:
                log.warning("%s: %s refused: %s", self.config.client_id, topic, code)
                self._subscriptions.pop(topic, None)

    async def _run(self) -> None:
        """Connects until it works, then stays connected."""
        while not self._closed:
            await self._allowed.wait()
            connected = await self._try()
            self._first_attempt.set()
            if connected:
                break
            await self._pause()
        await self._stay_connected()

    async def _stay_connected(self) -> None:
        while not self._closed:
            await self._lost.wait()
            if self._closed:
                return
            await self._pause()
            while not self._closed:
                await self._allowed.wait()
                if await self._try():
                    break
                await self._pause()

    async def _try(self) -> bool:
        """One attempt for the background loop: whether it connected. Errors are noted,
        never raised: an unexpected one would end the loop and the session with it."""
        try:
            await self._attempt()
        except MqttError as exc:
            # Expected while the broker is away: said once and counted (drivers.mqtt.health).
            self.last_error = type(exc).__name__
            self.health.failed(exc)
            log.debug("%s: connecting failed: %s", self.config.client_id, exc)
            return False
        except Exception as exc:
            self.last_error = type(exc).__name__
            self.health.failed(exc)
            log.exception("%s: connecting failed unexpectedly", self.config.client_id)
            return False
        return True

    async def _pause(self) -> None:
        if not self._allowed.is_set():
            return  # partitioned: the partition's end is the wait
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, float(self.config.reconnect_max_delay))

    def _connection_lost(self, reason: str) -> None:
        if self._closed:
            return
        self._lost.set()
        self._went_down(reason)

    async def _close(self) -> None:
        self._closed = True
        self.health.close()
        self._allowed.set()
        self._lost.set()
        self._first_attempt.set()  # a start() still waiting for it returns, unconnected
        await self._tasks.close()
        await self._connection.close()
        self._closing()
        self._replies.fail_all(MqttNotConnected("the client disconnected"))

    # -- operations -----------------------------------------------------------------------

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        subs = list(subscriptions)
        for topic, qos in subs:
            if qos not in (0, 1, 2):
                raise ValueError(f"QoS {qos} for {topic!r}")
        if self._closed:
            raise MqttNotConnected("the client disconnected")
        self._subscriptions.update(subs)
        if not subs or not self._connection.is_open:
            return []
        codes = await self._connection.subscribe(subs)
        granted: list[int] = []
        refused: MqttSubscribeRefused | None = None
        for (topic, _qos), code in zip(subs, codes, strict=False):
            if code.is_failure:
                self._subscriptions.pop(topic, None)
                refused = refused or MqttSubscribeRefused(topic, code.value, str(code))
                continue
            granted.append(code.value)
        if refused is not None:
            raise refused
        return granted

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        names = list(topics)
        for topic in names:
            self._subscriptions.pop(topic, None)
        self._connection.unsubscribe(names)

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
        if self._closed:
            raise MqttNotConnected("the client disconnected")
        await self._connection.publish(
            topic,
            payload,
            qos,
            retain,
            response_topic=response_topic,
            correlation_data=correlation_data,
        )
