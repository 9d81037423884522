"""The seam between the panel's session and its broker connection.

`session.PanelSession` talks only to a `PanelLink`: the MQTT adapter (`mqtt_link.py`)
implements it over a `drivers.mqtt.link.MqttLink` (a real broker's session or an in-memory
broker's link); tests also implement it directly. A missing method fails at construction,
not in the middle of a door transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

#: topic, payload; called on the event loop.
MessageHandler = Callable[[str, bytes], None]
#: True when the link (re)connected with its subscriptions in place, False when it dropped.
ConnectionHandler = Callable[[bool], None]


class PanelLink(ABC):
    """A broker connection as the panel needs it."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether publishes can reach the broker now."""

    @abstractmethod
    async def start(self) -> None:
        """Connect (and keep reconnecting); returns once the first attempt is under way."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect cleanly (the broker then sends no last will) and stop reconnecting."""

    @abstractmethod
    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish; for QoS 1, return only once the broker has PUBACKed it.

        Raises `LinkDown` when not connected or when the connection drops first: the caller
        then still holds the message and must send it again later.
        """

    @abstractmethod
    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        """Subscribe now and after every reconnect."""

    @abstractmethod
    def on_message(self, handler: MessageHandler) -> Callable[[], None]:
        """Calls ``handler(topic, payload)`` for every message; returns its remover."""

    @abstractmethod
    def on_connection(self, handler: ConnectionHandler) -> Callable[[], None]:
        """Calls ``handler(True)`` on every connection with the subscriptions in place,
        ``handler(False)`` when it drops; returns its remover."""
