"""The control panel's side of an OSDP bus: one exchange at a time, polling every reader.

OSDP over RS-485 is half duplex and the CP speaks first: one command, then the addressed
PD's reply (within 200 ms), then the next command. `ControlPanel` owns the line and runs
that cycle in one task. Every PD is polled in turn (``poll_interval`` apart at the most
frequent); commands a caller queues with `ControlPanel.command` go to their PD instead of
its next poll. Replies to polls that carry something (a card read, a key press, a tamper
report) go to the ``on_reply`` handlers; replies to commands go back to the caller.

Transaction rules (SIA OSDP 2.2, 5.7 and 5.9):

- Sequence numbers: 0 on the first message to a PD (it resets the PD's count), then 1, 2,
  3, 1, … Each reply echoes the command's number; the number moves on only after a valid
  reply. A missing or unreadable reply is sent again with the same number (``retries``
  times); a reply with another number is counted and treated as none.
- osdp_BUSY: the PD will answer later; the same command is sent again after ``busy_delay``
  with the same number, without counting a retry.
- osdp_NAK with a sequence error: the PD lost count; the next message starts again at 0.
- Online and offline: a PD is online from its first valid reply and offline once it has
  given none for ``offline_after`` seconds (8 in the standard); an offline PD is tried once
  a second only, so that a dead reader does not slow the bus for the live ones, and starts
  again at sequence 0 (and, with a key, a new secure session).

A PD configured with a key (``PdConfig.scbk``) gets a secure session (`drivers.osdp.secure`)
as soon as it answers its first poll, and nothing else until it has one: commands queued
meanwhile fail, the handshake is tried again every ``offline_retry`` seconds. Every command
is then sealed (MAC, data encrypted) and every reply opened; a reply that does not open
ends the session, which starts again before the next exchange. ``PdConfig.install`` takes
a reader that holds only the default key SCBK-D through osdp_KEYSET to its own key.

Everything that can go wrong on the wire is counted in `BusStats` / `PdStats`; nothing
received can raise out of the decoder or stop the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from drivers.errors import DriverError
from drivers.listeners import Listeners
from drivers.osdp.codes import Command, NakReason, Reply
from drivers.osdp.commands import CommunicationSet
from drivers.osdp.frame import Frame, FrameDecoder, encode
from drivers.osdp.messages import MessageError, decode_reply
from drivers.osdp.replies import CommunicationConfiguration
from drivers.osdp.secure import SCBK_D, SecureChannel, SecureChannelError
from drivers.osdp.transport import Line, OsdpLineError
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

ReplyHandler = Callable[[int, Frame], None]
StatusHandler = Callable[[int, bool], None]


class OsdpError(DriverError):
    """An OSDP exchange failed."""


class PdOffline(OsdpError):
    """The PD gave no valid reply (after the retries), or is offline."""


class BusClosed(OsdpError):
    """The control panel was closed."""


class HandshakeRefused(OsdpError):
    """The PD answered a handshake step with something else (osdp_NAK, or nothing)."""

    def __init__(self, reply: Frame | None) -> None:
        what = "no reply" if reply is None else f"reply 0x{reply.code:02X}"
        super().__init__(f"the PD refused the secure-channel step: {what}")


@dataclass(frozen=True, slots=True)
class PdConfig:
    """One reader on the bus. With ``scbk`` every exchange after the first poll runs in a
    secure session under that key; with ``install`` too, the reader is taken to hold only
    the default key: the session starts on SCBK-D, osdp_KEYSET gives it ``scbk``, and the
    session starts again on it."""

    address: int
    use_crc: bool = True
    scbk: bytes | None = field(default=None, repr=False)
    install: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0x7E:
            raise ValueError(f"PD address {self.address} out of 0..0x7E")
        if self.scbk is not None and len(self.scbk) != 16:
            raise ValueError("an SCBK is 16 bytes")
        if self.install and self.scbk is None:
            raise ValueError("install mode needs the SCBK to install")


@dataclass(slots=True)
class PdStats:
    polls: int = 0
    commands: int = 0
    replies: int = 0
    timeouts: int = 0
    retries: int = 0
    naks: int = 0
    busy: int = 0
    sequence_errors: int = 0
    went_offline: int = 0
    #: Secure sessions established, and refused or broken ones (a bad MAC, a cryptogram
    #: that does not verify, a reply in the clear).
    sessions: int = 0
    security_errors: int = 0
    keys_installed: int = 0
    #: Seconds from writing a command to its valid reply, the most recent 1,000.
    round_trips: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass(slots=True)
class BusStats:
    #: Frames without the reply bit: our own transmission echoed by an RS-485 transceiver.
    echoes: int = 0
    #: Replies from a PD nobody was waiting for (late, or a wrong address).
    unexpected: int = 0


@dataclass(slots=True)
class _Pending:
    code: int
    data: bytes
    future: asyncio.Future[Frame]


@dataclass(slots=True)
class PdState:
    config: PdConfig
    online: bool = False
    sequence: int = 0
    last_reply: float | None = None
    first_failure: float | None = None
    next_poll: float = 0.0
    queue: deque[_Pending] = field(default_factory=deque)
    stats: PdStats = field(default_factory=PdStats)
    channel: SecureChannel | None = None
    #: Still on SCBK-D, waiting for osdp_KEYSET (install mode).
    installing: bool = False
    next_handshake: float = 0.0

    @property
    def secure(self) -> bool:
        return self.channel is not None and self.channel.established

    def advance(self) -> None:
        self.sequence = 1 if self.sequence == 3 else self.sequence + 1


class ControlPanel:
    """The CP of one bus. `start` it, queue `command`s, `close` it."""

    def __init__(
        self,
        line: Line,
        pds: Sequence[PdConfig],
        *,
        reply_timeout: float = 0.2,
        retries: int = 2,
        poll_interval: float = 0.05,
        offline_after: float = 8.0,
        offline_retry: float = 1.0,
        busy_delay: float = 0.02,
        busy_limit: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        addresses = [pd.address for pd in pds]
        if len(set(addresses)) != len(addresses):
            raise ValueError("two PDs share an address")
        self.line = line
        self.pds = {pd.address: PdState(pd, installing=pd.install) for pd in pds}
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.poll_interval = poll_interval
        self.offline_after = offline_after
        self.offline_retry = offline_retry
        self.busy_delay = busy_delay
        self.busy_limit = busy_limit
        self._clock = clock
        self.decoder = FrameDecoder()
        self.stats = BusStats()
        self._reply_handlers: Listeners[[int, Frame]] = Listeners("OSDP reply", logger=log)
        self._status_handlers: Listeners[[int, bool]] = Listeners("OSDP status", logger=log)
        self._waiting: tuple[int, asyncio.Future[Frame]] | None = None
        self._wake = asyncio.Event()
        self._tasks = TaskSet("OSDP control panel", logger=log)
        self._closed = False
        line.on_data(self._received)

    # -- public API -----------------------------------------------------------------------

    def on_reply(self, handler: ReplyHandler) -> Callable[[], None]:
        """``handler(address, frame)`` for every poll reply other than osdp_ACK; returns
        the function that removes it."""
        return self._reply_handlers.add(handler)

    def on_status(self, handler: StatusHandler) -> Callable[[], None]:
        """``handler(address, online)`` whenever a PD comes online or goes offline;
        returns the function that removes it."""
        return self._status_handlers.add(handler)

    def start(self) -> None:
        self._tasks.spawn(self._run(), name="osdp-cp")

    @property
    def polling(self) -> bool:
        """Whether the poll loop is running (started, not closed, not failed)."""
        return any(not task.done() for task in self._tasks)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.close()
        for pd in self.pds.values():
            self._fail_queue(pd, BusClosed("the control panel is closed"))
        await self.line.close()

    async def command(self, address: int, code: int, data: bytes = b"") -> Frame:
        """Sends a command to the PD at ``address`` (before its next poll) and returns the
        reply frame, osdp_NAK included. Raises PdOffline when the PD does not answer and
        BusClosed when the panel closes first."""
        pd = self.pds.get(address)
        if pd is None:
            raise ValueError(f"no PD at address {address} on this bus")
        if self._closed:
            raise BusClosed("the control panel is closed")
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        pd.queue.append(_Pending(code, data, future))
        self._wake.set()
        return await future

    async def set_communication(self, address: int, new_address: int, baud_rate: int) -> int:
        """osdp_COMSET: the PD at ``address`` moves to ``new_address`` and ``baud_rate``;
        the panel follows it (and the line's speed, which every PD on it must share).
        Returns the address the PD confirmed in osdp_COM; raises OsdpError if refused."""
        pd = self.pds.get(address)
        if pd is None:
            raise ValueError(f"no PD at address {address} on this bus")
        if new_address != address and new_address in self.pds:
            raise ValueError(f"address {new_address} is taken on this bus")
        data = CommunicationSet(address=new_address, baud_rate=baud_rate).encode()
        reply = await self.command(address, Command.COMSET, data)
        try:
            com = decode_reply(reply.code, reply.data)
        except MessageError as exc:
            raise OsdpError(f"PD {address} answered osdp_COMSET with {exc}") from exc
        if not isinstance(com, CommunicationConfiguration):
            raise OsdpError(f"PD {address} refused osdp_COMSET (reply 0x{reply.code:02X})")
        # The PD answers on its old settings and uses the new ones from the next message,
        # which starts again at sequence 0 (and a new secure session).
        del self.pds[address]
        pd.config = replace(pd.config, address=com.address)
        pd.sequence = 0
        if pd.channel is not None:
            pd.channel.reset()
        self.pds[com.address] = pd
        if com.baud_rate and hasattr(self.line, "set_baud_rate"):
            self.line.set_baud_rate(com.baud_rate)
        log.info("OSDP PD %d now at address %d", address, com.address)
        return com.address

    # -- the cycle ------------------------------------------------------------------------

    async def _run(self) -> None:
        order = list(self.pds.values())
        while not self._closed:
            now = self._clock()
            busy = False
            for pd in order:
                if pd.online and pd.config.scbk is not None and not pd.secure:
                    if now >= pd.next_handshake:
                        busy = True
                        await self._establish(pd)
                        continue
                    self._fail_queue(pd, PdOffline(f"PD {pd.config.address}: no secure session"))
                if pd.queue:
                    busy = True
                    await self._send_queued(pd)
                elif now >= pd.next_poll:
                    busy = True
                    await self._poll(pd)
            if not busy:
                due = min(min(pd.next_poll, pd.next_handshake) for pd in order) - self._clock()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(due, 0.0))

    async def _poll(self, pd: PdState) -> None:
        pd.stats.polls += 1
        reply = await self._exchange(pd, Command.POLL, b"")
        pd.next_poll = self._clock() + (self.poll_interval if pd.online else self.offline_retry)
        if reply is not None and reply.code != Reply.ACK:
            self._reply_handlers.emit(pd.config.address, reply)

    async def _send_queued(self, pd: PdState) -> None:
        pending = pd.queue[0]
        pd.stats.commands += 1
        try:
            reply = await self._exchange(pd, pending.code, pending.data)
        finally:
            pd.queue.popleft()
        if pending.future.done():
            return
        if reply is None:
            pending.future.set_exception(
                PdOffline(f"PD {pd.config.address} did not answer command 0x{pending.code:02X}")
            )
        else:
            pending.future.set_result(reply)

    async def _exchange(
        self, pd: PdState, code: int, data: bytes, *, scb: bytes | None = None
    ) -> Frame | None:
        """One command and its valid reply, with the retries; None when none came. In a
        secure session the command is sealed once (a retry resends the same bytes) and the
        reply opened; a reply that does not open ends the session and counts as none."""
        address = pd.config.address
        frame = Frame(
            address=address,
            code=code,
            data=data,
            sequence=pd.sequence,
            scb=scb,
            use_crc=pd.config.use_crc,
        )
        channel = pd.channel if pd.secure else None
        if channel is not None:
            frame = channel.seal(frame)
        wire = encode(frame)
        attempts = busy = 0
        while attempts <= self.retries:
            sent = self._clock()
            reply = await self._send_and_wait(address, wire)
            if reply is None:
                pd.stats.timeouts += 1
                attempts += 1
                if attempts <= self.retries:
                    pd.stats.retries += 1
                continue
            if reply.sequence != frame.sequence:
                pd.stats.sequence_errors += 1
                attempts += 1
                continue
            if reply.code == Reply.BUSY:
                pd.stats.busy += 1
                busy += 1
                if busy > self.busy_limit:
                    attempts = self.retries + 1  # busy for a second: give up this time
                    continue
                await asyncio.sleep(self.busy_delay)
                continue
            pd.stats.round_trips.append(self._clock() - sent)
            if channel is not None:
                try:
                    reply = channel.open(reply)
                except SecureChannelError as exc:
                    # The session is gone on both ends (a PD that dropped it answers
                    # osdp_NAK in the clear); a new one starts before anything else.
                    self._security_failed(pd, exc)
                    pd.advance()
                    return None
            self._answered(pd)
            if reply.code == Reply.NAK:
                pd.stats.naks += 1
                if reply.data[:1] == bytes((NakReason.BAD_SEQUENCE,)):
                    pd.sequence = 0
            return reply
        self._failed(pd)
        return None

    async def _send_and_wait(self, address: int, wire: bytes) -> Frame | None:
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting = (address, future)
        # A partial packet left by a reply that was cut off would swallow this one's start.
        self.decoder.reset()
        try:
            self.line.write(wire)
            return await asyncio.wait_for(future, self.reply_timeout)
        except TimeoutError:
            return None
        except OsdpLineError as exc:
            log.warning("OSDP line failed: %s", exc)
            await asyncio.sleep(self.reply_timeout)
            return None
        finally:
            self._waiting = None

    def _answered(self, pd: PdState) -> None:
        pd.stats.replies += 1
        pd.last_reply = self._clock()
        pd.first_failure = None
        pd.advance()
        if not pd.online:
            pd.online = True
            self._status(pd)

    def _failed(self, pd: PdState) -> None:
        now = self._clock()
        if pd.first_failure is None:
            pd.first_failure = now
        # A PD never heard from is offline already; one that was online gets the grace.
        if pd.online and now - pd.first_failure >= self.offline_after:
            pd.online = False
            pd.stats.went_offline += 1
            self._status(pd)
        if not pd.online:
            pd.sequence = 0
            if pd.channel is not None:
                pd.channel.reset()

    def _status(self, pd: PdState) -> None:
        log.info("OSDP PD %d %s", pd.config.address, "online" if pd.online else "offline")
        self._status_handlers.emit(pd.config.address, pd.online)

    # -- the secure channel ---------------------------------------------------------------

    async def _establish(self, pd: PdState) -> None:
        """The secure-session handshake (and, in install mode, osdp_KEYSET and a second
        handshake on the new key). On failure the PD is tried again in a second."""
        scbk = pd.config.scbk
        assert scbk is not None
        pd.next_handshake = self._clock() + self.offline_retry
        channel = SecureChannel.for_cp(SCBK_D if pd.installing else scbk)
        pd.channel = channel
        try:
            hello = channel.challenge()
            ccrypt = await self._exchange(pd, hello.code, hello.data, scb=hello.scb)
            if ccrypt is None or ccrypt.code != Reply.CCRYPT:
                raise HandshakeRefused(ccrypt)
            scrypt = channel.accept_ccrypt(ccrypt)
            rmac = await self._exchange(pd, scrypt.code, scrypt.data, scb=scrypt.scb)
            if rmac is None or rmac.code != Reply.RMAC_I:
                raise HandshakeRefused(rmac)
            channel.accept_rmac_i(rmac)
        except (SecureChannelError, HandshakeRefused) as exc:
            self._security_failed(pd, exc)
            return
        pd.stats.sessions += 1
        log.info("OSDP PD %d: secure session established", pd.config.address)
        if pd.installing:
            await self._install_key(pd, scbk)

    async def _install_key(self, pd: PdState, scbk: bytes) -> None:
        # osdp_KEYSET: key type 0x01 (SCBK), length 16, the key; sealed and encrypted.
        reply = await self._exchange(pd, Command.KEYSET, bytes((0x01, len(scbk))) + scbk)
        if reply is None or reply.code != Reply.ACK:
            self._security_failed(pd, HandshakeRefused(reply))
            return
        pd.stats.keys_installed += 1
        pd.installing = False
        log.info("OSDP PD %d: its own SCBK is installed; new session on it", pd.config.address)
        # The PD uses the new key from its next session on.
        assert pd.channel is not None
        pd.channel.reset()
        pd.next_handshake = 0.0

    def _security_failed(self, pd: PdState, exc: Exception) -> None:
        pd.stats.security_errors += 1
        if pd.channel is not None:
            pd.channel.reset()
        log.warning("OSDP PD %d: no secure session: %s", pd.config.address, exc)

    def _fail_queue(self, pd: PdState, error: OsdpError) -> None:
        while pd.queue:
            pending = pd.queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(error)

    # -- receiving ------------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        for frame in self.decoder.feed(data):
            if not frame.reply:
                self.stats.echoes += 1
                continue
            waiting = self._waiting
            if waiting is None or waiting[0] != frame.address or waiting[1].done():
                self.stats.unexpected += 1
                continue
            waiting[1].set_result(frame)
