"""`PanelLink` over an `MqttLink`, with the panel's last will.

The MQTT session underneath (`drivers.mqtt.session.MqttSession`) already comes up while
the broker is down, reconnects, and keeps the panel's subscriptions; this adapter only
turns its messages and connection changes into the panel's shapes and its errors into
`LinkDown` and `PublishRefused`. Over a `drivers.mqtt.memory.MemoryBroker` link the same
panel runs without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from drivers.errors import MqttError, MqttPublishRefused
from drivers.listeners import Listeners
from drivers.mqtt.access import panel_client_id, panel_username
from drivers.mqtt.config import IncomingMessage, MqttConfig, Will
from drivers.mqtt.link import MqttLink
from drivers.mqtt.session import MqttSession
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
        # The one client id the broker lets this login use (drivers.mqtt.access).
        client_id=panel_client_id(site, panel),
        username=panel_username(site, panel),
        password=password,
        protocol=5 if protocol == 5 else 3,
        keepalive=keepalive,
        will=Will(topics.status, b"offline", qos=1, retain=True),
        timeout=timeout,
        max_inflight=64,
    )


class MqttPanelLink(PanelLink):
    """A panel's broker connection: over a new `MqttSession` when given its config (the
    first reconnect waits ``retry_seconds``, later ones back off from there up to the
    config's maximum), or over the `MqttLink` given."""

    def __init__(self, config: MqttConfig | MqttLink, *, retry_seconds: float = 1.0) -> None:
        if isinstance(config, MqttConfig):
            self.mqtt: MqttLink = MqttSession(
                replace(
                    config,
                    reconnect_min_delay=retry_seconds,
                    reconnect_max_delay=max(retry_seconds, config.reconnect_max_delay),
                )
            )
        else:
            self.mqtt = config
        self.retry_seconds = retry_seconds
        self._messages: Listeners[[str, bytes]] = Listeners("panel message", logger=log)
        self.mqtt.on_message(self._deliver)

    def __repr__(self) -> str:
        return f"MqttPanelLink({self.mqtt!r})"

    @property
    def last_error(self) -> str | None:
        """The type name of the last failed connection attempt, if the session says."""
        error = getattr(self.mqtt, "last_error", None)
        return error if isinstance(error, str) else None

    @property
    def connected(self) -> bool:
        return self.mqtt.connected.is_set()

    def on_message(self, handler: MessageHandler) -> Callable[[], None]:
        return self._messages.add(handler)

    def on_connection(self, handler: ConnectionHandler) -> Callable[[], None]:
        removers = (
            self.mqtt.on_connected(lambda: handler(True)),
            self.mqtt.on_disconnected(lambda reason: handler(False)),
        )

        def remove() -> None:
            for remover in removers:
                remover()

        return remove

    async def start(self) -> None:
        """Start connecting; returns after the first attempt, connected or not."""
        await self.mqtt.start()

    async def close(self) -> None:
        await self.mqtt.disconnect()

    async def partition(self, seconds: float) -> None:
        """Drop off the broker as a pulled cable would, and stay off for ``seconds``."""
        await self.mqtt.partition(seconds)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if not self.connected:
            raise LinkDown("not connected to the broker")
        try:
            await self.mqtt.publish(topic, payload, qos, retain)
        except MqttPublishRefused as exc:
            raise PublishRefused(str(exc)) from exc
        except MqttError as exc:
            # Not connected, or no PUBACK in time: delivery unknown, so send it again later.
            raise LinkDown(str(exc)) from exc

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        try:
            await self.mqtt.subscribe(list(topics))
        except MqttError as exc:
            raise LinkDown(str(exc)) from exc

    def _deliver(self, message: IncomingMessage) -> None:
        self._messages.emit(message.topic, message.payload)
