"""The asyncio MQTT client: the names most callers import, from the layers that hold them.

Usage::

    client = MqttClient(MqttConfig(host="127.0.0.1", port=1883, client_id="p1",
                                   username="p1", password=secret, protocol=5))
    client.on_message(handle)            # called on the event loop with an IncomingMessage
    await client.connect()               # MqttConnectRefused / MqttUnreachable / MqttTimeout
    await client.subscribe([(topic, 1)]) # MqttSubscribeRefused; renewed after reconnects
    await client.publish(topic, b"...")  # QoS 1: returns once the PUBACK is in
    reply = await client.request(topic, body, reply_topic=rsp, request_id="r1", timeout=2)
    await client.respond(incoming_request, body, topic=fallback_reply_topic)
    await client.disconnect()

The layers, bottom up, as in drivers/osdp (transport, bus, commands):

- `drivers.mqtt.connection`: one paho connection driven from the event loop (socket I/O,
  acknowledgements); the only module that imports paho;
- `drivers.mqtt.session`: `MqttSession`, which reconnects with backoff and keeps its
  subscriptions from the first attempt on;
- `drivers.mqtt.replies`: `Pending`, the request/reply matcher;
- `drivers.mqtt.link`: `MqttLink`, the seam every user talks to (request/respond on top),
  with `drivers.mqtt.memory.MemoryBroker` as the in-memory implementation for tests.

Request/response works on both protocols: on MQTT 5 the request carries a response topic
and the request id as correlation data; on 3.1.1, or when the other side is a 3.1.1
client, the reply is matched by the id inside its payload (``reply_id``, by default the
top-level ``"id"`` of a JSON object, which every reply of the panel protocol has).
"""

from __future__ import annotations

from drivers.mqtt.config import IncomingMessage, MqttConfig, Will
from drivers.mqtt.link import MessageHandler, MqttLink, ReplyId
from drivers.mqtt.replies import json_reply_id
from drivers.mqtt.session import MqttSession

#: The name the service, simulators and benches know the reconnecting session by.
MqttClient = MqttSession

__all__ = [
    "IncomingMessage",
    "MessageHandler",
    "MqttClient",
    "MqttConfig",
    "MqttLink",
    "MqttSession",
    "ReplyId",
    "Will",
    "json_reply_id",
]
