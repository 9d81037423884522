"""An asyncio MQTT client over paho-mqtt: the one module that imports paho.

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

paho's network I/O runs on the event loop itself, through paho's external-loop API: the
socket is watched with ``loop.add_reader``/``add_writer`` (``loop_read``/``loop_write``), a
once-a-second timer runs ``loop_misc`` (keepalive PINGREQ, the PINGRESP deadline), and a
publish is written at once from the coroutine that makes it. So paho's callbacks, the
handlers, the futures and all state are on the loop, and a request and its reply cross no
thread: with paho's own network thread (``loop_start``) each message paid two thread
hand-offs and, under load, waits for the GIL of up to the switch interval (5 ms), which was
most of the sequential p99 (bench/decisions_mqtt.py). Only the blocking TCP (and TLS)
connect of a reconnect runs in a worker thread; while it runs nothing else touches paho.
Reconnects back off exponentially from ``reconnect_min_delay`` to ``reconnect_max_delay``.
Subscriptions made through `subscribe` are kept and made again after a reconnect into a
session the broker no longer holds.

Every socket gets ``TCP_NODELAY`` (paho 2.2 does not set it): without it a request and its
reply each wait out Nagle and delayed ACK, 44-88 ms instead of about 0.4 ms on loopback.

Request/response (`request`, `respond`) works on both protocols: on MQTT 5 the request
carries a response topic and the request id as correlation data; on 3.1.1, or when the
other side is a 3.1.1 client, the reply is matched by the id inside its payload, which the
``reply_id`` function given to `MqttClient` extracts (by default the top-level ``"id"`` of a
JSON object, which every reply of the panel protocol has).

Errors are `drivers.errors.MqttError` subclasses. The password is never logged or shown in
a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from drivers.errors import (
    MqttConnectRefused,
    MqttError,
    MqttNotConnected,
    MqttPublishRefused,
    MqttSubscribeRefused,
    MqttTimeout,
    MqttUnreachable,
)

log = logging.getLogger(__name__)

MessageHandler = Callable[["IncomingMessage"], None]
ReplyId = Callable[[bytes], str | None]


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes when the client vanishes without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Everything `MqttClient` needs to connect; ``password`` is kept out of the repr."""

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
    #: Reconnect backoff: first wait, doubled after each failure up to the second.
    reconnect_min_delay: int = 1
    reconnect_max_delay: int = 30
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


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def json_reply_id(payload: bytes) -> str | None:
    """The top-level string ``"id"`` of a JSON object payload, or None."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


@dataclass(slots=True)
class _Pending:
    reply_topic: str
    future: asyncio.Future[IncomingMessage]


class _Paho(paho.Client):
    """paho's client reading the socket through a buffer of its own.

    paho reads a packet in three or more recv() calls (the command byte, each byte of the
    remaining length, the rest) and ends each read with one that fails with EAGAIN; a
    loopback recv() costs microseconds and an exception more. Here one recv() of up to
    64 KiB fills a buffer that those small reads are served from. `MqttClient._readable`
    drains the buffer, since the selector cannot see what is already in it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rbuf = bytearray()

    def _sock_recv(self, bufsize: int) -> bytes:
        buf = self.rbuf
        if not buf:
            data = super()._sock_recv(65536)
            if not data:
                return data
            if len(data) <= bufsize:
                return data
            buf += data
        out = bytes(buf[:bufsize])
        del buf[:bufsize]
        return out

    def _sock_close(self) -> None:
        self.rbuf.clear()
        super()._sock_close()


class MqttClient:
    """An MQTT connection whose operations are coroutines and whose network I/O and
    callbacks run on the event loop that called `connect`. Not reusable after
    `disconnect`."""

    def __init__(self, config: MqttConfig, *, reply_id: ReplyId = json_reply_id) -> None:
        self.config = config
        self._reply_id = reply_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._handlers: list[MessageHandler] = []
        self._on_up: list[Callable[[], None]] = []
        self._on_down: list[Callable[[str], None]] = []
        self._connected = asyncio.Event()
        self._connect_result: asyncio.Future[None] | None = None
        self._acks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._pending: dict[str, _Pending] = {}
        self._subscriptions: dict[str, int] = {}
        self._ever_connected = False
        # mid of the SUBACK that completes a reconnect (see _loop_connected).
        self._renewal: int | None = None
        self._closed = False
        # The descriptor the loop watches; paho's socket object may already be closed
        # when it says so, and a closed socket has no fileno().
        self._fd: int | None = None
        # Whether the loop watches the socket for writability / a write is scheduled.
        self._writer = False
        self._write_soon = False
        self._ticker: asyncio.TimerHandle | None = None
        self._reconnector: asyncio.Task[None] | None = None
        # The worker thread's TCP connect; while it runs, the loop leaves paho alone.
        self._connecting: asyncio.Future[Any] | None = None
        self._backoff = float(config.reconnect_min_delay)
        self._paho = self._make_paho()

    # -- set-up ---------------------------------------------------------------------------

    def _make_paho(self) -> _Paho:
        cfg = self.config
        client = _Paho(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=paho.MQTTv5 if cfg.protocol == 5 else paho.MQTTv311,
            # 3.1.1 only: MQTT 5 takes clean_start in connect().
            clean_session=None if cfg.protocol == 5 else cfg.clean_start,
        )
        # No enable_logger(): paho logs routine states as errors (a loop pass after our own
        # disconnect, "Client is not connected"); this module logs what matters itself.
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.will is not None:
            client.will_set(cfg.will.topic, cfg.will.payload, cfg.will.qos, cfg.will.retain)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.connect_timeout = cfg.timeout
        client.max_inflight_messages_set(cfg.max_inflight)
        client.on_socket_open = self._paho_socket_open
        client.on_socket_close = self._paho_socket_close
        client.on_socket_register_write = self._paho_want_write
        client.on_socket_unregister_write = self._paho_written
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_message = self._paho_message
        client.on_publish = self._paho_ack_publish
        client.on_subscribe = self._paho_ack_subscribe
        return client

    # -- public API -----------------------------------------------------------------------

    @property
    def connected(self) -> asyncio.Event:
        """Set while connected (CONNACK accepted, subscriptions renewed), cleared when the
        connection drops."""
        return self._connected

    def on_message(self, handler: MessageHandler) -> Callable[[], None]:
        """Calls ``handler`` on the event loop for every message that is not a reply to a
        pending `request`; returns a function that removes it. Handlers must not block:
        start a task for slow work. An exception in one is logged, not raised."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` on the loop after every accepted CONNACK (reconnects too), once
        the subscriptions renewed after a reconnect are acknowledged."""
        self._on_up.append(callback)

    def on_disconnected(self, callback: Callable[[str], None]) -> None:
        """Calls ``callback(reason)`` on the loop whenever the connection is lost or closed."""
        self._on_down.append(callback)

    def socket(self) -> socket.socket | None:
        """The current socket, for inspection (getsockopt) only; None when there is none."""
        sock = self._paho.socket()
        return sock if isinstance(sock, socket.socket) else None

    async def connect(self) -> None:
        """Connects and waits for the CONNACK; later drops are reconnected in the background.

        Raises MqttUnreachable (no TCP/TLS connection), MqttConnectRefused (CONNACK refused,
        with its reason code) or MqttTimeout; after any of them the client is closed."""
        if self._closed or self._loop is not None:
            raise MqttError("connect() may be called once per client")
        cfg = self.config
        self._loop = loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._connect_result = loop.create_future()
        props = None
        if cfg.protocol == 5:
            props = _properties(PacketTypes.CONNECT)
            # A kept session outlives an outage of up to a day; a clean one ends with the
            # connection, as on 3.1.1.
            props.SessionExpiryInterval = 0 if cfg.clean_start else 86400
        clean_start = cfg.clean_start if cfg.protocol == 5 else paho.MQTT_CLEAN_START_FIRST_ONLY
        self._tick()
        try:
            self._connecting = loop.run_in_executor(
                None,
                functools.partial(
                    self._paho.connect,
                    cfg.host,
                    cfg.port,
                    cfg.keepalive,
                    clean_start=clean_start,
                    properties=props,
                ),
            )
            try:
                await self._connecting
            finally:
                self._connecting = None
            await asyncio.wait_for(self._connect_result, cfg.timeout)
        except (OSError, ValueError) as exc:
            await self._shutdown()
            raise MqttUnreachable(
                f"cannot reach the broker at {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        except TimeoutError as exc:
            await self._shutdown()
            raise MqttTimeout(f"no CONNACK from {cfg.host}:{cfg.port} in {cfg.timeout} s") from exc
        except BaseException:
            await self._shutdown()
            raise

    async def disconnect(self) -> None:
        """Sends DISCONNECT and closes the socket; pending operations fail with
        MqttNotConnected. Safe to call more than once."""
        if self._closed:
            return
        await self._shutdown()

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribes and waits for the SUBACK; returns the granted QoS of each filter.

        Raises MqttSubscribeRefused for the first refused filter (the others stay
        subscribed), MqttNotConnected or MqttTimeout. Accepted filters are renewed after a
        reconnect."""
        subs = list(subscriptions)
        if not subs:
            return []
        self._require_connected()
        for topic, qos in subs:
            if qos not in (0, 1, 2):
                raise ValueError(f"QoS {qos} for {topic!r}")
        try:
            rc, mid = self._paho.subscribe(subs)
        except ValueError as exc:
            raise MqttError(f"bad subscription: {exc}") from exc
        self._check_rc(rc, "subscribe")
        if mid is None:
            raise MqttNotConnected("subscribe: the connection dropped")
        self._flush()
        codes = await self._await_ack(mid, "SUBACK")
        granted: list[int] = []
        refused: MqttSubscribeRefused | None = None
        for (topic, qos), code in zip(subs, codes, strict=False):
            if code.is_failure:
                refused = refused or MqttSubscribeRefused(topic, code.value, str(code))
                continue
            granted.append(code.value)
            self._subscriptions[topic] = qos
        if refused is not None:
            raise refused
        return granted

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Unsubscribes (without waiting for the UNSUBACK) and stops renewing them."""
        names = list(topics)
        for topic in names:
            self._subscriptions.pop(topic, None)
        if names and self._paho.is_connected():
            self._paho.unsubscribe(names)
            self._flush()

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
    ) -> None:
        """Publishes; for QoS 1 and 2 returns once the broker acknowledged it.

        Raises MqttNotConnected, MqttTimeout, or MqttPublishRefused (MQTT 5 brokers say
        when they refuse, e.g. 0x87 not authorized). The MQTT 5 properties are dropped on
        3.1.1, where the payload must carry what they would."""
        self._require_connected()
        props = None
        if self.config.protocol == 5 and (response_topic or correlation_data is not None):
            props = _properties(PacketTypes.PUBLISH)
            if response_topic:
                props.ResponseTopic = response_topic
            if correlation_data is not None:
                props.CorrelationData = correlation_data
        try:
            info = self._paho.publish(topic, payload, qos, retain, props)
        except ValueError as exc:
            raise MqttError(f"cannot publish to {topic!r}: {exc}") from exc
        self._check_rc(info.rc, f"publish to {topic!r}")
        self._flush()
        if qos == 0:
            return
        (code,) = await self._await_ack(info.mid, "PUBACK")
        if code.is_failure:
            raise MqttPublishRefused(topic, code.value, str(code))

    async def request(
        self,
        topic: str,
        payload: bytes,
        *,
        reply_topic: str,
        request_id: str,
        # The reply deadline is part of the request, as in the panels' protocol, so the
        # parameter stays rather than asking callers for asyncio.timeout().
        timeout: float,  # noqa: ASYNC109
        qos: int = 1,
    ) -> IncomingMessage:
        """Publishes a request and returns its reply.

        The caller must be subscribed to ``reply_topic`` and must have put ``request_id``
        (and, for 3.1.1 peers, ``reply_topic``) into the payload itself. A reply is the
        first message on ``reply_topic`` whose correlation data, or else whose payload id
        (``reply_id``), equals ``request_id``; it goes to the caller, not to the handlers.
        Raises MqttTimeout when none comes within ``timeout`` seconds."""
        if request_id in self._pending:
            raise ValueError(f"request id {request_id!r} is already waiting for a reply")
        loop = self._require_loop()
        entry = _Pending(reply_topic, loop.create_future())
        self._pending[request_id] = entry
        try:
            await self.publish(
                topic,
                payload,
                qos,
                response_topic=reply_topic,
                correlation_data=request_id.encode(),
            )
            return await asyncio.wait_for(entry.future, timeout)
        except TimeoutError as exc:
            raise MqttTimeout(f"no reply to request {request_id!r} in {timeout} s") from exc
        finally:
            self._pending.pop(request_id, None)

    async def respond(
        self,
        request: IncomingMessage,
        payload: bytes,
        *,
        topic: str | None = None,
        qos: int = 1,
    ) -> None:
        """Answers ``request``: on its MQTT 5 response topic with its correlation data, or
        else on ``topic`` (the reply_to of its payload, or the panel's rsp topic)."""
        target = request.response_topic or topic
        if not target:
            raise ValueError(f"request on {request.topic!r} names no reply topic")
        await self.publish(target, payload, qos, correlation_data=request.correlation_data)

    # -- helpers on the loop --------------------------------------------------------------

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._closed:
            raise MqttNotConnected("the client is not connected")
        return self._loop

    def _require_connected(self) -> None:
        self._require_loop()
        if not self._paho.is_connected():
            raise MqttNotConnected("the client is not connected (reconnecting)")

    @staticmethod
    def _check_rc(rc: MQTTErrorCode, what: str) -> None:
        if rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise MqttNotConnected(f"{what}: the connection dropped")
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError(f"{what} failed: {paho.error_string(rc)}")

    def _flush(self) -> None:
        # paho only queues a packet when an external loop watches for writability; writing
        # it here, before the coroutine yields, saves a loop pass per message. What the
        # socket does not take now, the writer callback sends when it drains.
        if self._connecting is None and self._paho.want_write():
            self._paho.loop_write()

    async def _await_ack(self, mid: int, what: str) -> list[ReasonCode]:
        # Acks are read only in the reader callback, which cannot run before this coroutine
        # yields, so registering here cannot miss one.
        future = self._require_loop().create_future()
        self._acks[mid] = future
        try:
            return await asyncio.wait_for(future, self.config.timeout)
        except TimeoutError as exc:
            raise MqttTimeout(f"no {what} for message {mid} in {self.config.timeout} s") from exc
        finally:
            if self._acks.get(mid) is future:
                del self._acks[mid]

    async def _shutdown(self) -> None:
        self._closed = True
        if self._reconnector is not None:
            self._reconnector.cancel()
        if self._connecting is not None:
            # The worker's connect cannot be cancelled; let it finish so that its socket
            # is closed below rather than left open behind us.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._connecting)
        if self._paho.socket() is not None:
            self._paho.disconnect()
            self._flush()
            # The DISCONNECT normally leaves at once and paho closes the socket after it;
            # a full send buffer gets a second to drain, then the socket is closed anyway.
            for _ in range(100):
                if self._paho.socket() is None:
                    break
                await asyncio.sleep(0.01)
            else:
                self._paho._sock_close()  # paho has no public "close now"
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._connected.clear()
        gone = MqttNotConnected("the client disconnected")
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(gone)
        for entry in self._pending.values():
            if not entry.future.done():
                entry.future.set_exception(gone)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """Runs ``fn`` on the loop, after the paho call now under way has returned."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            loop.call_soon(fn, *args)
            return
        # The loop may close between the check and the call; then nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Runs ``fn`` now when on the loop's thread, else posts it there."""
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._post(fn, *args)

    # -- the socket on the loop -----------------------------------------------------------

    def _watch(self, fd: int) -> None:
        if self._loop is None or fd < 0:
            return
        self._fd = fd
        self._loop.add_reader(fd, self._readable)

    def _unwatch(self, fd: int) -> None:
        if self._loop is None or self._fd != fd:
            return
        self._fd = None
        self._writer = False
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)

    def _want_write(self, fd: int) -> None:
        # paho queued a packet. Try to send it on the next loop pass (by then the paho call
        # that queued it has returned) and watch for writability only if the socket does
        # not take it all: two epoll_ctl calls per PUBACK otherwise.
        if self._loop is None or self._fd != fd or self._write_soon:
            return
        self._write_soon = True
        self._loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._write_soon = False
        if self._connecting is None and self._paho.want_write():
            self._paho.loop_write()
        if self._paho.want_write() and self._fd is not None and not self._writer:
            self._writer = True
            self._require_loop().add_writer(self._fd, self._writable)

    def _unwatch_write(self, fd: int) -> None:
        if self._loop is not None and self._fd == fd and self._writer:
            self._writer = False
            self._loop.remove_writer(fd)

    # No guard for a connect under way in the worker thread: by the time the worker has
    # announced the socket it only queues CONNECT, which the loop itself then writes.
    def _readable(self) -> None:
        client = self._paho
        rc = client.loop_read()
        # What the selector cannot see: packets left in our read buffer, and TLS records
        # already decrypted inside the SSL object.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            sock = client.socket()
            if sock is None:
                break
            if not client.rbuf and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                break
            rc = client.loop_read()
        # The PUBACKs (and replies queued by handlers run inline) leave in this same pass.
        if self._paho.want_write():
            self._paho.loop_write()

    def _writable(self) -> None:
        self._paho.loop_write()

    def _tick(self) -> None:
        # Keepalive: paho sends PINGREQ when the link was quiet for `keepalive` seconds and
        # drops a connection whose PINGRESP is overdue.
        loop = self._loop
        if loop is None or self._closed:
            return
        if self._connecting is None:
            self._paho.loop_misc()
        self._ticker = loop.call_later(1.0, self._tick)

    def _schedule_reconnect(self) -> None:
        if self._closed or self._reconnector is not None or self._loop is None:
            return
        self._reconnector = self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Tries again with exponential backoff until a TCP connection is up and CONNECT is
        sent; the CONNACK, or the next drop, arrives through the callbacks."""
        loop = self._require_loop()
        cfg = self.config
        try:
            while not self._closed:
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, float(cfg.reconnect_max_delay))
                if self._closed:
                    return
                self._connecting = loop.run_in_executor(None, self._paho.reconnect)
                try:
                    await asyncio.shield(self._connecting)
                except (OSError, ValueError) as exc:
                    log.debug("reconnect to %s:%s failed: %s", cfg.host, cfg.port, exc)
                    continue
                finally:
                    self._connecting = None
                return
        finally:
            self._reconnector = None

    def _loop_connected(self, reason: ReasonCode, renewal: int | None) -> None:
        result = self._connect_result
        if reason.is_failure:
            if result is not None and not result.done():
                result.set_exception(MqttConnectRefused(reason.value, str(reason)))
            else:
                log.warning("reconnect to %s refused: %s", self.config.host, reason)
            return
        self._backoff = float(self.config.reconnect_min_delay)
        # Up only once the renewed subscriptions are in: a message published after the
        # callback must not slip past a SUBSCRIBE the broker has not handled yet.
        self._renewal = renewal
        if renewal is None:
            self._mark_up()

    def _mark_up(self) -> None:
        result = self._connect_result
        self._connected.set()
        if result is not None and not result.done():
            result.set_result(None)
        for callback in list(self._on_up):
            self._call(callback)

    def _loop_disconnected(self, reason: str) -> None:
        self._renewal = None
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            for callback in list(self._on_down):
                self._call(callback, reason)
        if self._ever_connected:
            self._schedule_reconnect()

    def _loop_ack(self, mid: int, codes: list[ReasonCode]) -> None:
        if mid == self._renewal:
            self._renewal = None
            self._mark_up()
            return
        future = self._acks.get(mid)
        if future is not None and not future.done():
            future.set_result(codes)

    def _loop_message(self, msg: IncomingMessage) -> None:
        if self._pending and self._resolve_reply(msg):
            return
        for handler in list(self._handlers):
            self._call(handler, msg)

    def _resolve_reply(self, msg: IncomingMessage) -> bool:
        key = None
        if msg.correlation_data is not None:
            key = msg.correlation_data.decode("utf-8", "replace")
        entry = self._pending.get(key) if key is not None else None
        if entry is None:
            key = self._reply_id(msg.payload)
            entry = self._pending.get(key) if key is not None else None
        if entry is None or entry.reply_topic != msg.topic or entry.future.done():
            return False
        entry.future.set_result(msg)
        return True

    @staticmethod
    def _call(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("MQTT callback %r failed", fn)

    # -- paho callbacks: on the loop, inside loop_read/loop_write/loop_misc; the socket
    # -- ones also in the worker thread that connects ------------------------------------

    def _set_nodelay(self, sock: Any) -> None:
        if self.config.tcp_nodelay and isinstance(sock, socket.socket):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                log.warning("cannot set TCP_NODELAY: %s", exc)

    def _paho_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # Before CONNECT is written, so even the handshake is not held back by Nagle.
        self._set_nodelay(sock)
        self._on_loop(self._watch, sock.fileno())

    def _paho_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho calls this before it closes the socket, while fileno() still answers.
        self._on_loop(self._unwatch, sock.fileno())

    def _paho_want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock.fileno())

    def _paho_written(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch_write, sock.fileno())

    def _paho_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        renewal = None
        if reason.is_failure:
            if not self._ever_connected:
                # A refused first connect is the caller's error; retrying would hide it.
                client.disconnect()
        else:
            if self._ever_connected and not flags.session_present:
                renewal = self._renew_subscriptions(client)
            self._ever_connected = True
        self._post(self._loop_connected, reason, renewal)

    def _renew_subscriptions(self, client: paho.Client) -> int | None:
        """Subscribes again to everything; the SUBACK's mid, or None if nothing was sent."""
        subs = list(self._subscriptions.items())
        if not subs:
            return None
        rc, mid = client.subscribe(subs)
        log.info("renewing %d subscriptions after reconnect", len(subs))
        return mid if rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._closed:
            log.info("MQTT connection to %s lost: %s", self.config.host, reason)
        self._post(self._loop_disconnected, str(reason))

    def _paho_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        received = time.monotonic()
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            log.warning("dropped a message whose topic is not UTF-8")
            return
        props = msg.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        incoming = IncomingMessage(
            topic=topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            retain=bool(msg.retain),
            response_topic=response_topic,
            correlation_data=bytes(correlation) if correlation is not None else None,
            received=received,
        )
        self._post(self._loop_message, incoming)

    def _paho_ack_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        self._post(self._loop_ack, mid, [reason])

    def _paho_ack_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failures = [str(r) for r in reasons if r.is_failure]
        if failures:
            log.warning("SUBACK %d refused filters: %s", mid, ", ".join(failures))
        self._post(self._loop_ack, mid, list(reasons))
