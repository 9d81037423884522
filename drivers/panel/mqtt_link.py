"""`PanelLink` over `drivers.mqtt.client.MqttClient`, with the panel's last will.

`MqttClient.connect` succeeds once or closes the client, and paho reconnects only after a
first success; a panel must also come up while the broker is down. So this adapter makes a
new client until one connects, then lets paho reconnect it. `partition` cuts the
connection without a DISCONNECT (the broker publishes the will, as when a cable is pulled)
and keeps the panel off the broker for a while: the simulator's network partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence

from drivers.errors import MqttError, MqttPublishRefused
from drivers.mqtt.access import panel_username
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig, Will
from drivers.mqtt.topics import PanelTopics
from drivers.panel.errors import LinkDown, PanelError
from drivers.panel.link import ConnectionHandler, MessageHandler, PanelLink

log = logging.getLogger(__name__)


class PublishRefused(PanelError):
    """The broker refused a publish (MQTT 5 reason code): resending will not help."""


def panel_mqtt_config(
    site: str,
    panel: str,
    *,
    host: str,
    port: int,
    password: str | None,
    protocol: int = 5,
    keepalive: int = 15,
    timeout: float = 5.0,
) -> MqttConfig:
    """The connection of one panel: its broker login and its retained "offline" will."""
    topics = PanelTopics(site, panel)
    return MqttConfig(
        host=host,
        port=port,
        client_id=f"panel.{site}.{panel}",
        username=panel_username(site, panel),
        password=password,
        protocol=5 if protocol == 5 else 3,
        keepalive=keepalive,
        will=Will(topics.status, b"offline", qos=1, retain=True),
        timeout=timeout,
        max_inflight=64,
    )


class MqttPanelLink(PanelLink):
    def __init__(self, config: MqttConfig, *, retry_seconds: float = 1.0) -> None:
        self.config = config
        self.retry_seconds = retry_seconds
        self._client: MqttClient | None = None
        self._live = False  # connected and our subscriptions are in place
        self._subscriptions: dict[str, int] = {}
        self._on_message: list[MessageHandler] = []
        self._on_connection: list[ConnectionHandler] = []
        self._allowed = asyncio.Event()
        self._allowed.set()
        self._drop = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"MqttPanelLink({self.config.client_id!r}, connected={self.connected})"

    @property
    def connected(self) -> bool:
        client = self._client
        return self._live and client is not None and client.connected.is_set()

    def on_message(self, handler: MessageHandler) -> None:
        self._on_message.append(handler)

    def on_connection(self, handler: ConnectionHandler) -> None:
        self._on_connection.append(handler)

    async def start(self) -> None:
        """Start connecting; returns after the first attempt, connected or not."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"{self.config.client_id} link")
        await self._first_attempt.wait()

    async def close(self) -> None:
        self._closed = True
        self._allowed.set()
        self._drop.set()
        if self._runner is not None:
            await self._runner
        await self._retire(clean=True)

    async def partition(self, seconds: float) -> None:
        """Drop off the broker as a pulled cable would, and stay off for ``seconds``."""
        self._allowed.clear()
        self._drop.set()
        await asyncio.sleep(seconds)
        self._allowed.set()

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        client = self._client
        if client is None or not self.connected:
            raise LinkDown("not connected to the broker")
        try:
            await client.publish(topic, payload, qos, retain)
        except MqttPublishRefused as exc:
            raise PublishRefused(str(exc)) from exc
        except MqttError as exc:
            # Not connected, or no PUBACK in time: delivery unknown, so send it again later.
            raise LinkDown(str(exc)) from exc

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        self._subscriptions.update(dict(topics))
        client = self._client
        if client is not None and self.connected:
            try:
                await client.subscribe(list(topics))
            except MqttError as exc:
                raise LinkDown(str(exc)) from exc

    # --- the connection -------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            await self._allowed.wait()
            if self._closed:
                break
            client = MqttClient(self.config)
            client.on_message(self._deliver)
            client.on_connected(self._paho_up)
            client.on_disconnected(self._paho_down)
            try:
                await client.connect()
                if self._subscriptions:
                    await client.subscribe(list(self._subscriptions.items()))
            except MqttError as exc:
                self.last_error = type(exc).__name__
                self._first_attempt.set()
                with contextlib.suppress(MqttError):
                    await client.disconnect()
                await self._sleep_unless_closed(self.retry_seconds)
                continue
            self._client = client
            self._drop.clear()
            self._live = True
            self._first_attempt.set()
            self._notify(True)
            await self._drop.wait()
            if not self._closed:
                await self._retire(clean=False)

    async def _sleep_unless_closed(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drop.wait(), seconds)
        if not self._closed:
            self._drop.clear()

    async def _retire(self, *, clean: bool) -> None:
        client, self._client = self._client, None
        was_live, self._live = self._live, False
        if client is None:
            return
        if not clean:
            # Cut the TCP connection first, so no DISCONNECT goes out and the will fires.
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(MqttError):
            await client.disconnect()
        if was_live:
            self._notify(False)

    def _paho_up(self) -> None:
        # A paho reconnect of the current client (its subscriptions renewed by the client).
        if self._client is not None and self._live:
            self._notify(True)

    def _paho_down(self, reason: str) -> None:
        if self._client is not None and self._live:
            self._notify(False)

    def _deliver(self, message: IncomingMessage) -> None:
        for handler in list(self._on_message):
            handler(message.topic, message.payload)

    def _notify(self, up: bool) -> None:
        for handler in list(self._on_connection):
            try:
                handler(up)
            except Exception:
                log.exception("panel link connection handler failed")
