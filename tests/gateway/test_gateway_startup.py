"""The gateway with no broker to reach (issue 15): it starts, its links say they are down
and keep trying in the background, and stop() returns promptly, even while a connect hangs
on a broker address that drops every SYN."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.authn.factory import build_card_authentication
from accessd.config import Settings
from accessd.decisions.service import DecisionService
from accessd.events import EventBus
from accessd.gateway.links import broker_links
from accessd.gateway.service import MqttGateway
from drivers.mqtt.config import MqttConfig
from drivers.mqtt.session import MqttSession
from tests.dead_ports import SynDrop, refusing_port
from tests.waiting import until

#: A bound only a wait on the broker would exceed.
PROMPT_SECONDS = 2.0

MakeGateway = Callable[..., MqttGateway]


@pytest.fixture
def make_gateway(
    sessions: async_sessionmaker[AsyncSession], bus: EventBus
) -> Callable[..., MqttGateway]:
    def make(port: int, **config: Any) -> MqttGateway:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "client_id": "accessd-startup",
            "username": "accessd",
            "password": "never-shown",
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 0.2,
        }
        feeds = MqttConfig(**(settings | config))
        requests = MqttConfig(**(settings | config | {"client_id": "accessd-startup-req"}))
        decisions = DecisionService(sessions, bus)
        cards = build_card_authentication(Settings(), sessions)
        return MqttGateway(
            MqttSession(feeds),
            sessions,
            decisions,
            cards.authenticator,
            bus,
            requests=MqttSession(requests),
        )

    return make


async def test_the_gateway_starts_and_stops_promptly_with_no_broker_listening(
    make_gateway: MakeGateway,
) -> None:
    gateway = make_gateway(refusing_port())
    began = time.monotonic()
    await gateway.start()
    try:
        assert time.monotonic() - began < PROMPT_SECONDS
        links = broker_links(gateway)
        assert set(links) == {"feeds", "requests"}
        assert not any(s.connected for s in links.values())
        # Not given up: both links keep trying in the background.
        await until(
            lambda: all(s.attempts >= 3 for s in broker_links(gateway).values()),
            what="three attempts on each link",
        )
        for status in broker_links(gateway).values():
            assert status.last_error is not None and "MqttUnreachable" in status.last_error
            assert "never-shown" not in status.last_error
    finally:
        began = time.monotonic()
        await gateway.stop()
        assert time.monotonic() - began < PROMPT_SECONDS


async def test_the_gateway_stops_promptly_while_its_connects_hang(
    make_gateway: MakeGateway,
) -> None:
    silent = SynDrop()
    try:
        # Each attempt waits its 1 s timeout; start() returns after the first.
        gateway = make_gateway(silent.port, timeout=1.0)
        await gateway.start()
        try:
            await until(
                lambda: all(s.attempts >= 1 for s in broker_links(gateway).values()),
                what="a timed-out attempt on each link",
            )
            timed_out = broker_links(gateway)["feeds"].last_error or ""
            assert "Mqtt" in timed_out and str(silent.port) in timed_out
        finally:
            # Past the backoff (at most 0.2 s): the next attempts hang in the kernel's connect.
            await asyncio.sleep(0.4)
            began = time.monotonic()
            await gateway.stop()
            assert time.monotonic() - began < PROMPT_SECONDS
    finally:
        silent.close()
