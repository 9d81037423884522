"""One MQTT connection over paho-mqtt, driven from the event loop: the one module that
imports paho.

`MqttConnection.open` makes one attempt (TCP or TLS, CONNECT, CONNACK) and raises a typed
error when it fails; `publish` and `subscribe` wait for their acknowledgements. A
connection that drops says so through ``on_lost`` and can be opened again; deciding when
(backoff, subscriptions to renew) is the session's business (`drivers.mqtt.session`).

paho's network I/O runs on the event loop itself, through paho's external-loop API: the
socket is watched with ``loop.add_reader``/``add_writer`` (``loop_read``/``loop_write``), a
once-a-second timer runs ``loop_misc`` (keepalive PINGREQ, the PINGRESP deadline), and a
publish is written at once from the coroutine that makes it. So paho's callbacks, the
futures and all state are on the loop, and a request and its reply cross no thread: with
paho's own network thread (``loop_start``) each message paid two thread hand-offs and,
under load, waits for the GIL of up to the switch interval (5 ms), which was most of the
sequential p99 (bench/decisions_mqtt.py). Only the blocking TCP (and TLS) connect runs in a
worker thread (a daemon thread of its own); while it runs nothing else touches paho.

Every socket gets ``TCP_NODELAY`` (paho 2.2 does not set it): without it a request and its
reply each wait out Nagle and delayed ACK, 44-88 ms instead of about 0.4 ms on loopback.
The password is never logged or shown in a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

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
    MqttTimeout,
    MqttUnreachable,
)
from drivers.mqtt.config import IncomingMessage, MqttConfig

log = logging.getLogger(__name__)


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def _in_daemon_thread(
    loop: asyncio.AbstractEventLoop, fn: Callable[[], Any]
) -> asyncio.Future[Any]:
    """Runs the blocking connect ``fn`` in a daemon thread of its own; its outcome is the
    future's, set on ``loop``.

    Not the loop's default executor: asyncio.run() joins that executor's threads when it
    ends, so a connect left hanging on a broker that drops our SYNs (the session closed
    without waiting for it) would hold the process's exit for up to `timeout` seconds.
    """
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = fn()
        except BaseException as exc:  # the caller on the loop decides what it means
            error = exc
        # A loop closed meanwhile has nobody left to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="mqtt connect", daemon=True).start()
    return future


class _Paho(paho.Client):
    """paho's client reading the socket through a buffer of its own.

    paho reads a packet in three or more recv() calls (the command byte, each byte of the
    remaining length, the rest) and ends each read with one that fails with EAGAIN; a
    loopback recv() costs microseconds and an exception more. Here one recv() of up to
    64 KiB fills a buffer that those small reads are served from. `MqttConnection._readable`
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


class MqttConnection:
    """One broker connection at a time on the loop that first opens it; see the module
    docstring. ``on_message`` gets every message, ``on_lost(reason)`` every drop of an
    open connection (ours included)."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        on_message: Callable[[IncomingMessage], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.config = config
        self._on_message = on_message
        self._on_lost = on_lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._opened = False  # a CONNACK was accepted once: open() reconnects from then on
        self._connack: asyncio.Future[bool] | None = None
        self._acks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        # SUBACKs never come over a later connection (paho sends SUBSCRIBE once): their
        # waiters fail when the connection goes. PUBACKs may (paho resends the PUBLISH).
        self._subacks: set[int] = set()
        # The descriptor the loop watches; paho's socket object may already be closed
        # when it says so, and a closed socket has no fileno().
        self._fd: int | None = None
        # Whether the loop watches the socket for writability / a write is scheduled.
        self._writer = False
        self._write_soon = False
        self._ticker: asyncio.TimerHandle | None = None
        # The worker thread's TCP connect; while it runs, the loop leaves paho alone.
        self._connecting: asyncio.Future[Any] | None = None
        self._paho = self._make_paho()

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

    # -- the connection -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether a CONNACK was accepted and the connection has not dropped since."""
        return self._paho.is_connected()

    def socket(self) -> socket.socket | None:
        """The current socket, for inspection (getsockopt) only; None when there is none."""
        sock = self._paho.socket()
        return sock if isinstance(sock, socket.socket) else None

    async def open(self) -> bool:
        """Connects and waits for the CONNACK; returns whether the broker still held our
        session. Raises MqttUnreachable (no TCP/TLS connection, or it closed first),
        MqttConnectRefused (with the CONNACK's reason code) or MqttTimeout."""
        cfg = self.config
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._tick()
        loop = self._loop
        self._connack = connack = loop.create_future()
        if self._opened:
            attempt: Callable[[], Any] = self._paho.reconnect
        else:
            props = None
            if cfg.protocol == 5:
                props = _properties(PacketTypes.CONNECT)
                # A kept session outlives an outage of up to a day; a clean one ends with
                # the connection, as on 3.1.1.
                props.SessionExpiryInterval = 0 if cfg.clean_start else 86400
            clean_start = cfg.clean_start if cfg.protocol == 5 else paho.MQTT_CLEAN_START_FIRST_ONLY
            attempt = functools.partial(
                self._paho.connect,
                cfg.host,
                cfg.port,
                cfg.keepalive,
                clean_start=clean_start,
                properties=props,
            )
        try:
            self._connecting = connecting = _in_daemon_thread(loop, attempt)
            try:
                await asyncio.shield(connecting)
            finally:
                self._connecting = None
                if not connecting.done():
                    # Cancelled (the session is closing) while the worker still waits on a
                    # broker that drops our SYNs: waiting for it would hold the close for
                    # up to `timeout` seconds. Its outcome is collected when it comes.
                    connecting.add_done_callback(self._late_connect)
            # The socket is announced and CONNECT queued; the loop writes it now.
            self._flush()
            # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancel that comes
            # as the future completes (drivers.mqtt.replies).
            async with asyncio.timeout(cfg.timeout):
                present: bool = await connack
        except (OSError, ValueError) as exc:
            await self._drop()
            raise MqttUnreachable(
                f"cannot reach the broker at {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        except TimeoutError as exc:
            await self._drop()
            raise MqttTimeout(f"no CONNACK from {cfg.host}:{cfg.port} in {cfg.timeout} s") from exc
        except BaseException:
            await self._drop()
            raise
        finally:
            self._connack = None
        self._opened = True
        return present

    def _late_connect(self, attempt: asyncio.Future[Any]) -> None:
        """The end of a connect whose `open` was cancelled: its error is taken (else asyncio
        reports it as never retrieved) and, once the connection is closed, its socket too."""
        if attempt.cancelled() or attempt.exception() is not None:
            return
        if self._loop is None and self._paho.socket() is not None:
            self._paho._sock_close()  # paho has no public "close now"

    async def close(self) -> None:
        """Sends DISCONNECT (the broker then publishes no will) and closes the socket;
        acknowledgements still awaited fail with MqttNotConnected."""
        await self._drop()
        gone = MqttNotConnected("the client disconnected")
        for ack in self._acks.values():
            if not ack.done():
                ack.set_exception(gone)
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._loop = None

    def abort(self) -> None:
        """Cuts the TCP connection without a DISCONNECT, as a pulled cable would: the
        broker publishes the will; ``on_lost`` follows when the loop sees the socket end."""
        sock = self.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    async def _drop(self) -> None:
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

    # -- operations -----------------------------------------------------------------------

    async def subscribe(self, subscriptions: Sequence[tuple[str, int]]) -> list[ReasonCode]:
        """Subscribes and waits for the SUBACK; its reason code for each filter, in order.
        Raises MqttNotConnected (also when the connection drops first) or MqttTimeout."""
        self._require_open()
        subs = list(subscriptions)
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
        self._subacks.add(mid)
        try:
            return await self._await_ack(mid, "SUBACK")
        finally:
            self._subacks.discard(mid)

    def unsubscribe(self, topics: Sequence[str]) -> None:
        """Sends UNSUBSCRIBE if open; the UNSUBACK is not awaited."""
        if topics and self._paho.is_connected():
            self._paho.unsubscribe(list(topics))
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
        """Publishes; for QoS 1 and 2 returns once the broker acknowledged it. Raises
        MqttNotConnected, MqttTimeout or MqttPublishRefused (MQTT 5 brokers say when they
        refuse, e.g. 0x87 not authorized). The MQTT 5 properties are dropped on 3.1.1."""
        self._require_open()
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

    # -- helpers on the loop --------------------------------------------------------------

    def _require_open(self) -> None:
        if self._loop is None or not self._paho.is_connected():
            raise MqttNotConnected("the client is not connected")

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
        loop = self._loop
        if loop is None:
            raise MqttNotConnected("the client is not connected")
        future: asyncio.Future[list[ReasonCode]] = loop.create_future()
        self._acks[mid] = future
        try:
            async with asyncio.timeout(self.config.timeout):  # not wait_for: see connect
                return await future
        except TimeoutError as exc:
            raise MqttTimeout(f"no {what} for message {mid} in {self.config.timeout} s") from exc
        finally:
            if self._acks.get(mid) is future:
                del self._acks[mid]

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
        loop = self._loop
        if self._paho.want_write() and self._fd is not None and not self._writer and loop:
            self._writer = True
            loop.add_writer(self._fd, self._writable)

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
        if client.want_write():
            client.loop_write()

    def _writable(self) -> None:
        self._paho.loop_write()

    def _tick(self) -> None:
        # Keepalive: paho sends PINGREQ when the link was quiet for `keepalive` seconds and
        # drops a connection whose PINGRESP is overdue.
        loop = self._loop
        if loop is None:
            return
        if self._connecting is None:
            self._paho.loop_misc()
        self._ticker = loop.call_later(1.0, self._tick)

    def _loop_connected(self, reason: ReasonCode, present: bool) -> None:
        connack = self._connack
        if connack is None or connack.done():
            return
        if reason.is_failure:
            connack.set_exception(MqttConnectRefused(reason.value, str(reason)))
        else:
            connack.set_result(present)

    def _loop_disconnected(self, reason: str) -> None:
        connack = self._connack
        if connack is not None and not connack.done():
            connack.set_exception(
                MqttUnreachable(f"the broker closed the connection before CONNACK: {reason}")
            )
        gone = MqttNotConnected(f"the connection dropped: {reason}")
        for mid in list(self._subacks):
            ack = self._acks.get(mid)
            if ack is not None and not ack.done():
                ack.set_exception(gone)
        self._on_lost(reason)

    def _loop_ack(self, mid: int, codes: list[ReasonCode]) -> None:
        future = self._acks.get(mid)
        if future is not None and not future.done():
            future.set_result(codes)

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
        if reason.is_failure:
            # Retrying is the session's decision, never paho's.
            client.disconnect()
        self._post(self._loop_connected, reason, bool(flags.session_present))

    def _paho_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
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
        self._post(self._on_message, incoming)

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
