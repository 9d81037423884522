"""drivers.mqtt.session against a real Mosquitto: one reconnecting connection that keeps its
subscriptions from the first attempt on, whatever ended the connection before."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from drivers.errors import MqttError
from drivers.mqtt.access import SERVICE_USER, panel_username
from drivers.mqtt.config import IncomingMessage, MqttConfig, Will
from drivers.mqtt.session import MqttSession
from drivers.mqtt.topics import PanelTopics
from tests.dead_ports import SynDrop, refusing_port
from tests.mqtt_broker import PANEL_CLIENT_IDS, MosquittoBroker, mosquitto, mqtt_users  # noqa: F401
from tests.paths import ROOT
from tests.waiting import until

P1 = PanelTopics("hq", "p1")
PANEL1 = panel_username("hq", "p1")
_IDS = itertools.count()

Make = Callable[..., MqttSession]


@pytest.fixture
async def make(
    mosquitto: MosquittoBroker,  # noqa: F811
    mqtt_users: dict[str, str],  # noqa: F811
) -> AsyncIterator[Make]:
    """Sessions as users of the test broker, quick to reconnect; all closed afterwards."""
    made: list[MqttSession] = []

    def session(user: str, **kw: Any) -> MqttSession:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": mosquitto.port,
            # A panel's login is bound to its own client id; the service's is free.
            "client_id": PANEL_CLIENT_IDS.get(user, f"session-{user}-{next(_IDS)}"),
            "username": user,
            "password": mqtt_users.get(user),
            "reconnect_min_delay": 0.1,
            "reconnect_max_delay": 0.5,
        }
        made.append(MqttSession(MqttConfig(**(settings | kw))))
        return made[-1]

    yield session
    for s in made:
        await s.disconnect()


def inbox(session: MqttSession) -> list[bytes]:
    got: list[bytes] = []
    session.on_message(lambda msg: got.append(msg.payload))
    return got


async def test_subscriptions_asked_before_the_first_connection_are_made_on_it(make: Make) -> None:
    service = make(SERVICE_USER)
    got = inbox(service)
    assert await service.subscribe([(P1.event(1, "card"), 1)]) == []  # not connected yet
    await service.start()
    assert service.connected.is_set()
    panel = make(PANEL1)
    await panel.connect()
    await panel.publish(P1.event(1, "card"), b"first")
    await until(lambda: got == [b"first"])


async def test_a_session_started_while_the_broker_is_down_comes_up_with_it(
    make: Make,
    mosquitto: MosquittoBroker,  # noqa: F811
) -> None:
    mosquitto.stop()
    try:
        service = make(SERVICE_USER)
        got = inbox(service)
        await service.start()  # returns after the first attempt, which failed
        assert not service.connected.is_set()
        assert service.last_error == "MqttUnreachable"
        down = service.health.status()
        assert (down.connected, down.attempts, down.connections) == (False, 1, 0)
        assert f"127.0.0.1:{mosquitto.port}" in (down.last_error or "")
        await service.subscribe([(P1.event(2, "card"), 1)])
    finally:
        mosquitto.start()
    await until(service.connected.is_set, 30, what="the session connected")
    assert service.last_error is None
    up = service.health.status()
    assert (up.connected, up.attempts, up.last_error, up.connections) == (True, 0, None, 1)
    assert down.since is not None and up.since is not None and up.since > down.since
    panel = make(PANEL1)
    await panel.connect()
    await panel.publish(P1.event(2, "card"), b"after the outage")
    await until(lambda: got == [b"after the outage"])


async def test_a_cut_connection_leaves_the_will_and_reconnects_with_its_subscriptions(
    make: Make,
) -> None:
    watcher = make(SERVICE_USER)
    wills = inbox(watcher)
    await watcher.connect()
    await watcher.subscribe([(P1.status, 1)])
    panel = make(PANEL1, will=Will(P1.status, b"offline", retain=False))
    commands = inbox(panel)
    ups: list[None] = []
    downs: list[str] = []
    panel.on_connected(lambda: ups.append(None))
    panel.on_disconnected(downs.append)
    await panel.connect()
    await panel.subscribe([(f"{P1.prefix}/cmd/#", 1)])
    assert ups == [None]

    # No DISCONNECT: the broker sees a dead client, publishes its will and forgets its
    # clean session; only the session's own memory can subscribe it again.
    await panel.partition(0.3)
    await until(lambda: b"offline" in wills, what="the will")
    assert len(downs) == 1
    await until(lambda: len(ups) == 2, what="the reconnect")
    await watcher.publish(P1.command(1, "unlock"), b"after the cut")
    await until(lambda: commands == [b"after the cut"])


async def test_connect_raises_the_first_attempts_error_and_is_closed(make: Make) -> None:
    panel = make(PANEL1, password="wrong")
    with pytest.raises(MqttError):
        await panel.connect()
    with pytest.raises(MqttError):
        await panel.publish(P1.status, b"x")


async def test_a_handler_of_a_reconnected_session_still_runs_on_the_loop(make: Make) -> None:
    service = make(SERVICE_USER)
    seen: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    service.on_message(seen.put_nowait)
    await service.connect()
    await service.subscribe([(P1.event(3, "card"), 1)])
    await service.partition(0.1)
    await until(service.connected.is_set)
    panel = make(PANEL1)
    await panel.connect()
    await panel.publish(P1.event(3, "card"), b"x")
    msg = await asyncio.wait_for(seen.get(), 10)
    assert msg.payload == b"x"


def unreachable(port: int, **kw: Any) -> MqttSession:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": f"session-away-{next(_IDS)}",
        "username": SERVICE_USER,
        "password": "not-in-any-log",
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.1,
    }
    return MqttSession(MqttConfig(**(settings | kw)))


async def test_a_broker_that_stays_away_is_logged_once_and_its_attempts_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = unreachable(refusing_port())
    with caplog.at_level(logging.DEBUG, logger="drivers.mqtt"):
        try:
            await session.start()
            await until(lambda: session.health.attempts >= 5, what="five failed attempts")
        finally:
            await session.disconnect()
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert "cannot connect to the MQTT broker" in warned[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert "not-in-any-log" not in caplog.text
    status = session.health.status()
    assert status.failures >= 5 and not status.connected
    assert status.last_error is not None and "MqttUnreachable" in status.last_error


async def test_closing_a_session_whose_connect_hangs_returns_at_once_and_ends_its_socket() -> None:
    silent = SynDrop()
    try:
        # The connect's own timeout is far longer than the bound asked of the close.
        session = unreachable(silent.port, timeout=20.0)
        starting = asyncio.create_task(session.start())
        await asyncio.sleep(0.3)  # the first attempt is in the kernel's connect by now
        began = time.monotonic()
        await asyncio.wait_for(session.disconnect(), 2.0)
        await asyncio.wait_for(starting, 1.0)  # start() returns: nothing will connect
        assert time.monotonic() - began < 2.0
        assert not session.connected.is_set()

        # Let the abandoned connect through: its socket must be closed, not left open.
        async def late() -> bool:
            silent.accept_all()
            return bool(silent.accepted)

        for _ in range(100):  # the kernel sends the SYN again after 1 s, then 3 s
            if await late():
                break
            await asyncio.sleep(0.1)
        (conn,) = silent.accepted
        conn.settimeout(3.0)
        # Read in a thread: the close is done by a callback on this loop, which a blocking
        # recv here would keep from running (seen under load: the recv timed out).
        closed = await asyncio.to_thread(conn.recv, 64)
        assert closed == b"", "the late connection was left open after the close"
    finally:
        silent.close()


#: A process whose session closed while its connect hung on a broker that drops SYNs.
_HUNG_CONNECT = """
import asyncio, sys
from drivers.mqtt.config import MqttConfig
from drivers.mqtt.session import MqttSession

async def main() -> None:
    config = MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), client_id="x", timeout=20.0)
    session = MqttSession(config)
    starting = asyncio.create_task(session.start())
    await asyncio.sleep(0.3)
    await session.disconnect()
    await starting

asyncio.run(main())
"""


async def test_a_process_whose_connect_hangs_exits_once_its_session_is_closed() -> None:
    silent = SynDrop()
    try:
        began = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HUNG_CONNECT,
            str(silent.port),
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            # Far less than the connect's own 20 s: asyncio.run() does not wait for it.
            _out, err = await asyncio.wait_for(proc.communicate(), 8.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("the process waited for the hanging connect") from None
        assert proc.returncode == 0, err.decode(errors="replace")
        assert time.monotonic() - began < 8.0
    finally:
        silent.close()
