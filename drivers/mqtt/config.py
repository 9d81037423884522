"""What every layer of the MQTT stack shares: the connection's settings and a message as
the layers above the socket see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes when the client vanishes without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Everything a connection needs; ``password`` is kept out of the repr."""

    host: str
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: 5 for MQTT 5, 3 for MQTT 3.1.1.
    protocol: Literal[3, 5] = 5
    keepalive: int = 30
    #: MQTT 5 clean start / 3.1.1 clean session.
    clean_start: bool = True
    will: Will | None = None
    tls: bool = False
    #: CA bundle for TLS; None: the system's trust store.
    ca_file: str | None = None
    #: Seconds to wait for a CONNACK, SUBACK or PUBACK.
    timeout: float = 10.0
    #: Reconnect backoff in seconds: first wait, doubled after each failure up to the second.
    reconnect_min_delay: float = 1
    reconnect_max_delay: float = 30
    #: QoS 1/2 messages paho keeps unacknowledged at once; the service needs more than
    #: paho's 20 to keep many requests in flight.
    max_inflight: int = 256
    #: Off only to measure what Nagle costs (bench/); never in production.
    tcp_nodelay: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in (3, 5):
            raise ValueError("protocol must be 5 (MQTT 5) or 3 (MQTT 3.1.1)")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} out of range")
        if self.keepalive < 1 or self.timeout <= 0 or self.max_inflight < 1:
            raise ValueError("keepalive, timeout and max_inflight must be positive")
        if not 0 < self.reconnect_min_delay <= self.reconnect_max_delay:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message as the handlers get it. ``received`` is `time.monotonic()` when it was
    read off the socket; ``response_topic`` and ``correlation_data`` are MQTT 5 only."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None
    received: float = 0.0
