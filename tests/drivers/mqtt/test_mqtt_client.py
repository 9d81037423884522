"""drivers.mqtt.client against a real Mosquitto running the project's config and ACL."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import pytest

from drivers.errors import (
    MqttConnectRefused,
    MqttNotConnected,
    MqttPublishRefused,
    MqttSubscribeRefused,
    MqttTimeout,
    MqttUnreachable,
)
from drivers.mqtt.access import SERVICE_USER, panel_username
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.topics import SERVICE_REQUESTS, PanelTopics
from tests.mqtt_broker import (  # noqa: F401
    PANEL_CLIENT_IDS,
    MosquittoBroker,
    free_port,
    mosquitto,
    mqtt_users,
)

P1 = PanelTopics("hq", "p1")
P2 = PanelTopics("hq", "p2")
F1 = PanelTopics("field", "p1")
WAIT = 10.0  # a hang guard, never a measured bound

Connect = Callable[..., Awaitable[MqttClient]]


class Inbox:
    """Collects a client's messages; `next` waits for the next one."""

    def __init__(self, client: MqttClient) -> None:
        self.queue: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self.threads: set[int] = set()
        client.on_message(self._put)

    def _put(self, msg: IncomingMessage) -> None:
        self.threads.add(threading.get_ident())
        self.queue.put_nowait(msg)

    async def next(self) -> IncomingMessage:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    def drained(self) -> list[IncomingMessage]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


@pytest.fixture
async def connect(
    mosquitto: MosquittoBroker,  # noqa: F811
    mqtt_users: dict[str, str],  # noqa: F811
) -> AsyncIterator[Connect]:
    """Connects clients as a user of the test broker; disconnects them all afterwards."""
    made: list[MqttClient] = []

    async def make(user: str, protocol: Literal[3, 5] = 5, **kw: Any) -> MqttClient:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": mosquitto.port,
            # A panel's login is bound to its own client id; the service's is free.
            "client_id": PANEL_CLIENT_IDS.get(user, f"{user}-{len(made)}"),
            "username": user,
            "password": mqtt_users.get(user),
            "protocol": protocol,
        }
        cfg = MqttConfig(**(settings | kw))
        client = MqttClient(cfg)
        made.append(client)
        await client.connect()
        return client

    yield make
    for client in made:
        await client.disconnect()


PANEL1 = panel_username("hq", "p1")
PANEL2 = panel_username("hq", "p2")
FIELD1 = panel_username("field", "p1")


@pytest.mark.parametrize("protocol", [5, 3])
async def test_round_trip_arrives_on_the_event_loop(
    connect: Connect, protocol: Literal[3, 5]
) -> None:
    service = await connect(SERVICE_USER, protocol)
    inbox = Inbox(service)
    assert await service.subscribe([(f"{P1.prefix}/evt/#", 1)]) == [1]
    panel = await connect(PANEL1, protocol)
    await panel.publish(P1.event(1, "card"), b'{"v":1}', qos=1)
    msg = await inbox.next()
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == (
        P1.event(1, "card"),
        b'{"v":1}',
        1,
        False,
    )
    assert inbox.threads == {threading.get_ident()}
    assert service.connected.is_set()


async def test_qos1_publish_returns_only_after_the_puback(
    connect: Connect,
    mosquitto: MosquittoBroker,  # noqa: F811
) -> None:
    panel = await connect(PANEL1)
    mosquitto.pause()
    try:
        sending = asyncio.create_task(panel.publish(P1.event(1, "heartbeat"), b"{}", qos=1))
        # A frozen broker cannot acknowledge: the publish must still be waiting.
        await asyncio.sleep(0.3)
        assert not sending.done()
    finally:
        mosquitto.resume()
    await asyncio.wait_for(sending, WAIT)


async def test_retained_state_reaches_a_later_subscriber(connect: Connect) -> None:
    panel = await connect(PANEL1)
    await panel.publish(P1.status, b"online", retain=True)
    service = await connect(SERVICE_USER)
    inbox = Inbox(service)
    await service.subscribe([(P1.status, 1)])
    msg = await inbox.next()
    assert (msg.payload, msg.retain) == (b"online", True)


def _answer(service: MqttClient, body: Callable[[IncomingMessage], bytes]) -> None:
    """Makes ``service`` answer every request it gets, on the request's reply topic."""

    def on_request(msg: IncomingMessage) -> None:
        fallback = json.loads(msg.payload).get("reply_to")
        asyncio.get_running_loop().create_task(service.respond(msg, body(msg), topic=fallback))

    service.on_message(on_request)


async def test_request_reply_by_mqtt5_correlation_data(connect: Connect) -> None:
    service = await connect(SERVICE_USER, 5)
    # The reply carries no id: only the correlation data can match it.
    _answer(service, lambda msg: b'{"v":1,"granted":true}')
    await service.subscribe([(SERVICE_REQUESTS, 1)])
    panel = await connect(PANEL1, 5)
    others = Inbox(panel)
    await panel.subscribe([(P1.rsp, 1)])
    reply = await panel.request(
        P1.leaf("req/decide"), b'{"id":"r-1"}', reply_topic=P1.rsp, request_id="r-1", timeout=WAIT
    )
    assert reply.topic == P1.rsp
    assert reply.correlation_data == b"r-1"
    assert json.loads(reply.payload) == {"v": 1, "granted": True}
    assert others.drained() == []  # the reply went to the caller, not to the handlers


@pytest.mark.parametrize(("panel_protocol", "service_protocol"), [(3, 3), (5, 3), (3, 5)])
async def test_request_reply_by_payload_id_without_mqtt5_on_both_sides(
    connect: Connect, panel_protocol: Literal[3, 5], service_protocol: Literal[3, 5]
) -> None:
    service = await connect(SERVICE_USER, service_protocol)
    _answer(service, lambda msg: json.dumps({"id": json.loads(msg.payload)["id"]}).encode())
    await service.subscribe([(SERVICE_REQUESTS, 1)])
    panel = await connect(PANEL1, panel_protocol)
    await panel.subscribe([(P1.rsp, 1)])
    body = json.dumps({"id": "r-7", "reply_to": P1.rsp}).encode()
    reply = await panel.request(
        P1.leaf("req/decide"), body, reply_topic=P1.rsp, request_id="r-7", timeout=WAIT
    )
    assert reply.correlation_data is None
    assert json.loads(reply.payload) == {"id": "r-7"}


async def test_concurrent_requests_get_their_own_replies(connect: Connect) -> None:
    service = await connect(SERVICE_USER, 3)
    _answer(service, lambda msg: msg.payload)  # echo: the reply's id is the request's
    await service.subscribe([(SERVICE_REQUESTS, 1)])
    panel = await connect(PANEL1, 3)
    await panel.subscribe([(P1.rsp, 1)])

    async def ask(i: int) -> bytes:
        body = json.dumps({"id": f"r{i}", "n": i, "reply_to": P1.rsp}).encode()
        reply = await panel.request(
            P1.leaf("req/decide"), body, reply_topic=P1.rsp, request_id=f"r{i}", timeout=WAIT
        )
        return reply.payload

    answers = await asyncio.gather(*(ask(i) for i in range(50)))
    assert [json.loads(a)["n"] for a in answers] == list(range(50))


async def test_service_commands_a_panel_and_gets_the_result(connect: Connect) -> None:
    panel = await connect(PANEL1, 5)
    command_topic = P1.command(1, "unlock")

    def on_command(msg: IncomingMessage) -> None:
        result = json.dumps({"id": json.loads(msg.payload)["id"], "ok": True}).encode()
        asyncio.get_running_loop().create_task(panel.respond(msg, result, topic=P1.leaf("res/cmd")))

    panel.on_message(on_command)
    await panel.subscribe([(t, 1) for t in P1.panel_subscriptions])
    service = await connect(SERVICE_USER, 5)
    await service.subscribe([(P1.leaf("res/cmd"), 1)])
    reply = await service.request(
        command_topic,
        b'{"id":"c-1"}',
        reply_topic=P1.leaf("res/cmd"),
        request_id="c-1",
        timeout=WAIT,
    )
    assert json.loads(reply.payload) == {"id": "c-1", "ok": True}


async def test_a_request_nobody_answers_times_out(connect: Connect) -> None:
    panel = await connect(PANEL1)
    await panel.subscribe([(P1.rsp, 1)])
    with pytest.raises(MqttTimeout):
        await panel.request(
            P1.leaf("req/decide"),
            b'{"id":"lost"}',
            reply_topic=P1.rsp,
            request_id="lost",
            timeout=0.2,
        )


async def test_shared_subscription_gives_each_request_to_one_instance(connect: Connect) -> None:
    got: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for n in (1, 2):
        instance = await connect(SERVICE_USER)
        instance.on_message(lambda msg, n=n: got.put_nowait((n, msg.payload)))
        await instance.subscribe([(SERVICE_REQUESTS, 1)])
    panel = await connect(PANEL1)
    for i in range(40):
        await panel.publish(P1.leaf("req/decide"), str(i).encode())
    seen = [await asyncio.wait_for(got.get(), WAIT) for _ in range(40)]
    assert sorted(int(payload) for _, payload in seen) == list(range(40))
    assert {n for n, _ in seen} == {1, 2}  # Mosquitto deals them out in turn


@pytest.mark.parametrize("protocol", [5, 3])
async def test_a_bad_password_is_a_typed_refusal(connect: Connect, protocol: Literal[3, 5]) -> None:
    with pytest.raises(MqttConnectRefused) as refused:
        await connect(PANEL1, protocol, password="not-the-password")
    # Mosquitto 2.0 answers "not authorized" where the spec also allows "bad user name or
    # password"; either is a refusal of the login, never of the protocol.
    assert refused.value.reason_code in (0x86, 0x87)


async def test_an_unknown_user_and_an_anonymous_client_are_refused(connect: Connect) -> None:
    with pytest.raises(MqttConnectRefused):
        await connect("hq.nobody", password="x")
    with pytest.raises(MqttConnectRefused):
        await connect(PANEL1, password=None, username=None)


async def test_a_broker_that_is_not_there_is_unreachable() -> None:
    client = MqttClient(MqttConfig(host="127.0.0.1", port=free_port(), client_id="x"))
    with pytest.raises(MqttUnreachable):
        await client.connect()
    with pytest.raises(MqttNotConnected):
        await client.publish("ac/v1/hq/p1/status", b"x")


async def test_acl_drops_a_panel_publishing_on_another_panels_topics(connect: Connect) -> None:
    service = await connect(SERVICE_USER)
    inbox = Inbox(service)
    await service.subscribe([("ac/v1/#", 1)])
    v3 = await connect(PANEL1, 3)
    # MQTT 3.1.1 has no way to say no: the broker acknowledges and drops it.
    await v3.publish(P2.event(1, "card"), b"forged-by-v3")
    await v3.publish(P2.status, b"forged-status", retain=True)
    # Another panel (a login has one client id, so one connection at a time).
    v5 = await connect(FIELD1, 5)
    with pytest.raises(MqttPublishRefused) as refused:
        await v5.publish(P2.event(1, "card"), b"forged-by-v5")
    assert refused.value.reason_code == 0x87
    # The marker comes after the forgeries on the same connection, so once it arrives, any
    # forgery the broker let through would have arrived before it.
    await v5.publish(F1.event(1, "card"), b"marker-v5")
    await v3.publish(P1.event(1, "card"), b"marker-v3")
    got: list[bytes] = []
    while b"marker-v3" not in got or b"marker-v5" not in got:
        msg = await inbox.next()
        if not msg.retain:  # retained ones are earlier tests' state, sent on subscribing
            got.append(msg.payload)
    assert sorted(got) == [b"marker-v3", b"marker-v5"]


async def test_acl_keeps_a_panel_from_reading_another_panels_commands(connect: Connect) -> None:
    snoop = await connect(PANEL1, 3)
    snoop_inbox = Inbox(snoop)
    # The dynamic-security plugin refuses the subscriptions themselves (an acl_file would
    # grant them and filter what it delivers); the rules on delivery hold as well.
    for wide in (f"{P2.prefix}/cmd/#", "ac/v1/#", "#"):
        with pytest.raises(MqttSubscribeRefused):
            await snoop.subscribe([(wide, 1)])
    await snoop.subscribe([(f"{P1.prefix}/cmd/#", 1)])
    owner = await connect(PANEL2, 5)
    owner_inbox = Inbox(owner)
    await owner.subscribe([(f"{P2.prefix}/cmd/#", 1)])
    service = await connect(SERVICE_USER)
    await service.publish(P2.command(1, "unlock"), b"for-p2")
    await service.publish(P1.command(1, "unlock"), b"for-p1")
    assert (await owner_inbox.next()).payload == b"for-p2"  # it was published
    # Same publisher, later message: the snoop would have got p2's command first.
    assert (await snoop_inbox.next()).payload == b"for-p1"
    assert snoop_inbox.drained() == []


async def test_no_login_may_change_the_brokers_logins_at_run_time(connect: Connect) -> None:
    # The dynamic-security plugin takes commands on $CONTROL; the file `accessd mqtt acl`
    # writes must stay the whole truth, so not even the service may send them.
    control = "$CONTROL/dynamic-security/v1"
    command = b'{"commands": [{"command": "createClient", "username": "x", "password": "y"}]}'
    for user in (SERVICE_USER, PANEL1):
        client = await connect(user, 5)
        with pytest.raises(MqttPublishRefused):
            await client.publish(control, command)
        with pytest.raises(MqttSubscribeRefused):
            await client.subscribe([("$CONTROL/#", 1)])


async def test_reconnects_after_a_broker_restart_and_renews_subscriptions(
    connect: Connect,
    mosquitto: MosquittoBroker,  # noqa: F811
) -> None:
    service = await connect(SERVICE_USER, 5, reconnect_min_delay=1, reconnect_max_delay=2)
    inbox = Inbox(service)
    ups: asyncio.Queue[None] = asyncio.Queue()
    downs: asyncio.Queue[str] = asyncio.Queue()
    service.on_connected(lambda: ups.put_nowait(None))
    service.on_disconnected(downs.put_nowait)
    await service.subscribe([(f"{P1.prefix}/evt/#", 1)])
    panel = await connect(PANEL1, 3, reconnect_min_delay=1, reconnect_max_delay=2)

    mosquitto.restart()
    await asyncio.wait_for(downs.get(), WAIT)
    assert not service.connected.is_set()
    await asyncio.wait_for(ups.get(), WAIT)
    await asyncio.wait_for(panel.connected.wait(), WAIT)
    # A clean session is gone after the restart: only a renewed subscription delivers this.
    assert service.config.clean_start
    await panel.publish(P1.event(2, "door_pos"), b"after-restart")
    assert (await inbox.next()).payload == b"after-restart"


@pytest.mark.parametrize("nodelay", [True, False])
async def test_tcp_nodelay_is_set_on_the_socket(connect: Connect, nodelay: bool) -> None:
    client = await connect(PANEL1, tcp_nodelay=nodelay)
    sock = client.socket()
    assert sock is not None
    assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay


async def test_a_failing_handler_does_not_stop_the_others(connect: Connect) -> None:
    service = await connect(SERVICE_USER)

    def broken(msg: IncomingMessage) -> None:
        raise RuntimeError("handler bug")

    service.on_message(broken)
    inbox = Inbox(service)
    await service.subscribe([(P1.event(3, "heartbeat"), 1)])
    panel = await connect(PANEL1)
    await panel.publish(P1.event(3, "heartbeat"), b"one")
    await panel.publish(P1.event(3, "heartbeat"), b"two")
    assert [(await inbox.next()).payload for _ in range(2)] == [b"one", b"two"]


def test_the_password_is_not_in_the_repr() -> None:
    cfg = MqttConfig(host="h", username="u", password="s3cret-value")
    assert "s3cret-value" not in repr(cfg)
    assert "u" in repr(cfg)


async def test_a_burst_read_in_one_recv_is_delivered_whole_and_in_order(connect: Connect) -> None:
    # Many small messages reach the socket together; the client reads them in one recv()
    # into its own buffer, which the selector cannot see: every one must still come out.
    service = await connect(SERVICE_USER)
    inbox = Inbox(service)
    await service.subscribe([(P1.event(1, "card"), 1)])
    panel = await connect(PANEL1)
    count = 500
    await asyncio.gather(
        *(panel.publish(P1.event(1, "card"), b"%d" % i, qos=0) for i in range(count))
    )
    got = [(await inbox.next()).payload for _ in range(count)]
    assert got == [b"%d" % i for i in range(count)]
    assert inbox.threads == {threading.get_ident()}


async def test_keepalive_pings_hold_a_quiet_connection(connect: Connect) -> None:
    # The broker drops a client silent for 1.5 keepalives; only the loop's PINGREQs keep
    # this one up, and a drop would clear `connected`.
    client = await connect(PANEL1, keepalive=1)
    drops: list[str] = []
    client.on_disconnected(drops.append)
    await asyncio.sleep(3.5)
    assert drops == []
    assert client.connected.is_set()
    await client.publish(P1.event(1, "heartbeat"), b"still here")


async def test_no_network_thread_is_started(connect: Connect) -> None:
    before = {t.ident for t in threading.enumerate()}
    client = await connect(PANEL1)
    await client.publish(P1.event(1, "heartbeat"), b"x")
    # Only the default executor's worker that ran the blocking TCP connect may be new.
    new = [t for t in threading.enumerate() if t.ident not in before]
    assert all(t.name.startswith("asyncio_") for t in new), [t.name for t in new]
