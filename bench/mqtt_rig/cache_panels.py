"""Cache panels for the revocation: each its own login subscribed to its ``cred/#``,
holding the retained snapshot of a door all of them share, noting when a delta removes
the credential being revoked."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

from drivers.mqtt import messages as m
from drivers.mqtt.client import IncomingMessage, MqttClient
from drivers.mqtt.topics import PanelTopics
from drivers.panel.cache import credential_hash
from drivers.panel.mqtt_link import panel_mqtt_config

from .names import SITE, cache_name


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
