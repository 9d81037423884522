"""The baselines, measured in the same run as the gateway: two echo responders that answer
every request with one fixed reply, each on its own shared subscription. The faster of the
two is the figure the gateway is held to."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from drivers.mqtt import messages as m
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.topics import DEADLINE_QOS
from drivers.tasks import TaskSet

from .names import ECHO_USER, echo_subscription


def fixed_reply() -> bytes:
    """What both echoes answer: a grant as the gateway would encode one."""
    return m.encode(
        m.DecideReply(
            id="r000-1000000",
            granted=True,
            reason="granted",
            unlock_seconds=5,
            door=1,
            trail=["reader 1 at door 1", "credential 1 of person 1", "level 1 opens door 1"],
        )
    )


class Echoes:
    """Both echoes on the broker at ``port``, with the echoes' login."""

    def __init__(self, port: int, password: str) -> None:
        self.reply = fixed_reply()
        self.mqttclient = MqttClientEcho(port, password, self.reply)
        self.paho = PahoEcho(port, password, self.reply)

    async def start(self) -> None:
        await self.mqttclient.start()
        await self.paho.start()

    async def stop(self) -> None:
        await self.mqttclient.stop()
        self.paho.stop()


class MqttClientEcho:
    """The echo on an `MqttClient`: paho driven from the event loop, as the gateway's is."""

    def __init__(self, port: int, password: str, reply: bytes) -> None:
        self.reply = reply
        self.client = MqttClient(
            MqttConfig(
                host="127.0.0.1",
                port=port,
                client_id="bench-echo-responder",
                username=ECHO_USER,
                password=password,
            )
        )
        self.tasks = TaskSet("bench echo")
        self.client.on_message(self._on_message)

    def _on_message(self, msg: IncomingMessage) -> None:
        # As the gateway does: a task per request in a task set, the reply on its
        # response topic.
        self.tasks.spawn(self.client.respond(msg, self.reply, qos=DEADLINE_QOS), name="echo")

    async def start(self) -> None:
        await self.client.connect()
        await self.client.subscribe([(echo_subscription("mqttclient"), 1)])

    async def stop(self) -> None:
        await self.tasks.close()
        await self.client.disconnect()


class PahoEcho:
    """The bare paho echo responder, written as a paho user writes one: paho's own
    network thread (``loop_start``), a shared subscription, and each request answered from
    ``on_message`` with the fixed reply on its MQTT 5 response topic and correlation data.
    TCP_NODELAY is set on its socket as on the gateway's, so that Nagle's algorithm does not
    count against the baseline."""

    def __init__(self, port: int, password: str, reply: bytes) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = port
        self.reply = reply
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-paho-echo-responder",
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(ECHO_USER, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(echo_subscription("paho"), qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        asked = msg.properties
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = asked.CorrelationData
        client.publish(asked.ResponseTopic, self.reply, qos=DEADLINE_QOS, properties=props)

    async def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        if not await asyncio.to_thread(self.subscribed.wait, 10):
            raise RuntimeError("the paho echo did not subscribe")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
