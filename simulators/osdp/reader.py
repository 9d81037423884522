"""A simulated OSDP reader (PD): what a card reader with a keypad, LEDs, a buzzer and a
tamper switch answers to a control panel.

`SimulatedReader.handle` takes one command frame addressed to it and returns the reply
frame; `ReaderBus` puts any number of them on one line, each answering its own address,
as readers share an RS-485 pair. Card reads, key presses and tamper changes are queued
and handed out one per poll, as a PD does.

Sequence numbers as the standard asks of a PD: 0 resets the count; the number of the
previous command means the CP did not get the reply, which is sent again unchanged
(without acting twice); any other number than the next is refused with osdp_NAK 0x04.

Secure channel: a reader with a key (``scbk``), or in install mode (``install_mode``: it
accepts a session on the default key SCBK-D), answers osdp_CHLNG and osdp_SCRYPT, then
opens every command and seals every reply; osdp_KEYSET in a session gives it its own key
for the next session (and ends install mode). A command that does not open, or a session
asked for on a key it does not hold, gets osdp_NAK 0x06 in the clear and ends the session;
a command with sequence number 0 or in the clear ends it too. ``require_secure`` refuses
everything but osdp_POLL and osdp_ID in the clear.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from drivers.osdp import wiegand
from drivers.osdp.codes import Command, NakReason, Reply, SecurityBlock
from drivers.osdp.frame import Frame, FrameDecoder, encode
from drivers.osdp.messages import MessageError, decode_command
from drivers.osdp.secure import SecureChannel, SecureChannelError
from drivers.osdp.transparent import (
    TRANSPARENT_MODE,
    CardData,
    CardPresent,
    Done,
    GetMode,
    ModeReport,
    SendApdu,
    SetMode,
)
from drivers.osdp.transport import Line
from drivers.osdp.wiegand import WiegandFormat
from simulators.card import VirtualCard

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReaderState:
    """What the reader shows and holds, for tests to look at."""

    #: The last osdp_LED records, osdp_BUZ and osdp_TEXT payloads, and outputs by number.
    led: bytes = b""
    buzzer: bytes = b""
    text: bytes = b""
    outputs: dict[int, int] = field(default_factory=dict)
    tamper: bool = False
    power_failure: bool = False
    commands: int = 0


@dataclass(frozen=True, slots=True)
class Identity:
    vendor: bytes = b"\x0a\x00\x17"  # an OUI of our own choosing, not a real vendor's
    model: int = 1
    version: int = 1
    serial: int = 0x00C0FFEE
    firmware: tuple[int, int, int] = (1, 0, 0)


#: osdp_PDCAP: (function, compliance, number) triples.
CAPABILITIES = (
    (1, 1, 0),  # contact status monitoring
    (2, 1, 1),  # output control: one output
    (3, 1, 0),  # card data format: raw bits
    (4, 1, 1),  # reader LED control: one LED per reader
    (5, 1, 1),  # reader audible output
    (6, 1, 1),  # reader text output: one row
    (8, 1, 0),  # check character support: CRC-16
    (10, 0xC0, 0),  # receive buffer size, LSB
    (11, 0x05, 0),  # receive buffer size, MSB: 1472
    (14, 1, 0),  # smart card support: transparent mode (osdp_XWR/XRD)
    (15, 0, 0),  # readers: one
)


class SimulatedReader:
    """One PD at ``address``."""

    def __init__(
        self,
        address: int,
        *,
        identity: Identity | None = None,
        scbk: bytes | None = None,
        install_mode: bool = False,
        require_secure: bool = False,
    ) -> None:
        if not 0 <= address <= 0x7E:
            raise ValueError(f"address {address} out of 0..0x7E")
        self.address = address
        self.identity = identity or Identity()
        self.require_secure = require_secure
        self.scbk = scbk
        self.install_mode = install_mode
        self.channel: SecureChannel | None = None
        self._new_channel()
        self.security_refusals = 0
        #: The smart card in the reader's field (transparent mode reaches it), and the mode.
        self.card: VirtualCard | None = None
        self.transparent_mode = 0
        #: Set by osdp_COMSET: the address to answer on after this reply.
        self.moved_to: int | None = None
        self.state = ReaderState()
        self._events: deque[tuple[int, bytes]] = deque()
        self._last_seq: int | None = None
        self._last_reply: Frame | None = None
        self._reported_tamper = False

    # -- the world acting on the reader ---------------------------------------------------

    def present_card(self, bits: int, data: bytes, *, reader: int = 0, fmt: int = 0) -> None:
        """A card read as osdp_RAW: ``bits`` of ``data``, most significant bit first."""
        if not 0 < bits <= 8 * len(data):
            raise ValueError(f"{bits} bits do not fit in {len(data)} bytes")
        self._events.append((Reply.RAW, bytes((reader, fmt)) + struct.pack("<H", bits) + data))

    def present_wiegand(self, fmt: WiegandFormat, facility: int, number: int) -> None:
        """A proximity card in a Wiegand format (26-bit H10301, 37-bit H10304, …)."""
        bits, data = wiegand.encode(fmt, facility, number)
        self.present_card(bits, data)

    def present_piv(self, identifier: bytes | UUID) -> None:
        """A PIV card as a PIV reader reports it: its card UUID (128 bits) or FASC-N (200)."""
        raw = wiegand.piv_card_data(identifier)
        self.present_card(raw.bit_count, raw.data, reader=raw.reader, fmt=int(raw.format))

    def press_keys(self, digits: str, *, reader: int = 0) -> None:
        """Key presses as osdp_KEYPAD (``*`` is 0x7F and ``#`` 0x0D, as the standard codes them)."""
        keys = bytes(0x7F if c == "*" else 0x0D if c == "#" else ord(c) for c in digits)
        if any(k not in b"0123456789\x7f\x0d" for k in keys):
            raise ValueError("a keypad has digits, * and #")
        self._events.append((Reply.KEYPAD, bytes((reader, len(keys))) + keys))

    def set_tamper(self, tampered: bool) -> None:
        self.state.tamper = tampered

    def insert_card(self, card: VirtualCard | None) -> None:
        """Puts a smart card in the field (None takes it away)."""
        reset = getattr(card, "reset", None)
        if callable(reset):
            reset()  # a card coming into the field is powered up afresh
        self.card = card

    # -- protocol -------------------------------------------------------------------------

    def handle(self, cmd: Frame) -> Frame:
        """The reply to a command addressed to this reader."""
        if cmd.sequence != 0 and cmd.sequence == self._last_seq and self._last_reply:
            return self._last_reply  # the CP lost our reply: the same again, no second act
        if cmd.sequence != 0 and self._last_seq is not None:
            expected = 1 if self._last_seq == 3 else self._last_seq + 1
            if cmd.sequence != expected:
                return self._reply(cmd, Reply.NAK, bytes((NakReason.BAD_SEQUENCE,)))
        self.state.commands += 1
        if cmd.sequence == 0 and self.channel is not None and self.channel.established:
            self.channel.reset()
        reply = self._secure_or_plain(cmd)
        self._last_seq = cmd.sequence
        self._last_reply = reply
        return reply

    def _new_channel(self) -> None:
        if self.scbk is None and not self.install_mode:
            self.channel = None
            return
        # The cUID osdp_CCRYPT reports: vendor code, model and serial number.
        ident = self.identity
        cuid = ident.vendor + bytes((ident.model,)) + ident.serial.to_bytes(4, "little")
        self.channel = SecureChannel.for_pd(self.scbk, cuid=cuid, install_mode=self.install_mode)

    def _refuse(self, cmd: Frame) -> Frame:
        self.security_refusals += 1
        if self.channel is not None:
            self.channel.reset()
        return self._reply(cmd, Reply.NAK, bytes((NakReason.SECURITY_REQUIRED,)))

    def _secure_or_plain(self, cmd: Frame) -> Frame:
        channel = self.channel
        kind = cmd.security_type
        if kind in (SecurityBlock.SCS_11, SecurityBlock.SCS_13):
            if channel is None:
                return self._reply(cmd, Reply.NAK, bytes((NakReason.UNSUPPORTED_SECURITY,)))
            try:
                step = (
                    channel.accept_challenge(cmd)
                    if kind == SecurityBlock.SCS_11
                    else channel.accept_scrypt(cmd)
                )
            except SecureChannelError:
                return self._refuse(cmd)
            return step.frame(self.address, cmd.sequence, use_crc=cmd.use_crc)
        if kind is not None:
            if channel is None or not channel.established:
                return self._refuse(cmd)
            try:
                plain = channel.open(cmd)
            except SecureChannelError:
                return self._refuse(cmd)
            code, data = self._answer(plain, secure=True)
            reply = channel.seal(self._reply(plain, code, data))
            if code == Reply.ACK and plain.code == Command.KEYSET:
                self._new_channel()  # the new key, from the next session on
            return reply
        if channel is not None and channel.established:
            channel.reset()  # a command in the clear: the CP has left the session
        if self.require_secure and cmd.code not in (Command.POLL, Command.ID):
            return self._refuse(cmd)
        code, data = self._answer(cmd, secure=False)
        return self._reply(cmd, code, data)

    def _reply(self, cmd: Frame, code: int, data: bytes = b"") -> Frame:
        return Frame(
            address=self.address,
            reply=True,
            code=code,
            data=data,
            sequence=cmd.sequence,
            use_crc=cmd.use_crc,
        )

    def _answer(self, cmd: Frame, *, secure: bool) -> tuple[int, bytes]:
        code, data = cmd.code, cmd.data
        if code == Command.KEYSET:
            # Type 0x01 (SCBK), length, key; only inside a session, never in the clear.
            if not secure:
                return Reply.NAK, bytes((NakReason.SECURITY_REQUIRED,))
            if len(data) != 18 or data[0] != 0x01 or data[1] != 16:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            self.scbk = bytes(data[2:])
            self.install_mode = False
            return Reply.ACK, b""
        if code == Command.POLL:
            if self.state.tamper != self._reported_tamper:
                self._reported_tamper = self.state.tamper
                return Reply.LSTATR, self._lstat()
            if self._events:
                return self._events.popleft()
            return Reply.ACK, b""
        if code == Command.ID:
            ident = self.identity
            return Reply.PDID, (
                ident.vendor
                + bytes((ident.model, ident.version))
                + struct.pack("<I", ident.serial)
                + bytes(ident.firmware)
            )
        if code == Command.CAP:
            caps = list(CAPABILITIES)
            if self.channel is not None:
                caps.append((9, 1, 1))  # communication security: AES-128, SCBK-D allowed
            return Reply.PDCAP, b"".join(bytes(c) for c in caps)
        if code == Command.LSTAT:
            return Reply.LSTATR, self._lstat()
        if code == Command.ISTAT:
            return Reply.ISTATR, b"\x00"
        if code == Command.OSTAT:
            return Reply.OSTATR, bytes((self.state.outputs.get(0, 0) & 1,))
        if code == Command.RSTAT:
            return Reply.RSTATR, b"\x00"
        if code == Command.LED:
            if not data or len(data) % 14:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            self.state.led = data
            return Reply.ACK, b""
        if code == Command.BUZ:
            if not data or len(data) % 5:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            self.state.buzzer = data
            return Reply.ACK, b""
        if code == Command.TEXT:
            if len(data) < 6 or len(data) != 6 + data[5]:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            self.state.text = data
            return Reply.ACK, b""
        if code == Command.OUT:
            if not data or len(data) % 4:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            for i in range(0, len(data), 4):
                number, control = data[i], data[i + 1]
                # Control codes 1 and 3 turn the output off, 2 and 4 on (permanent, timed).
                self.state.outputs[number] = 1 if control in (2, 4, 6) else 0
            return Reply.ACK, b""
        if code == Command.MFG:
            if len(data) < 3:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            return Reply.MFGREP, data
        if code == Command.XWR:
            return self._extended_write(data)
        if code == Command.COMSET:
            if len(data) != 5 or data[0] > 0x7E:
                return Reply.NAK, bytes((NakReason.BAD_LENGTH,))
            # Answered from the old address; the new one holds from the next command.
            self.moved_to = data[0]
            return Reply.COM, data
        if code in (Command.ACURXSIZE, Command.KEEPACTIVE, Command.ABORT):
            return Reply.ACK, b""
        return Reply.NAK, bytes((NakReason.UNKNOWN_COMMAND,))

    def _extended_write(self, data: bytes) -> tuple[int, bytes]:
        """osdp_XWR: the mode, and APDUs to the card in transparent mode."""
        try:
            message = decode_command(Command.XWR, data)
        except MessageError as exc:
            return Reply.NAK, bytes((exc.reason,))
        if isinstance(message, SetMode):
            self.transparent_mode = message.mode
            return Reply.ACK, b""
        if isinstance(message, GetMode):
            return Reply.XRD, ModeReport(mode=self.transparent_mode).encode()
        if isinstance(message, Done):
            return Reply.ACK, b""
        if isinstance(message, SendApdu):
            if self.transparent_mode != TRANSPARENT_MODE:
                return Reply.NAK, bytes((NakReason.UNABLE_TO_PROCESS,))
            if self.card is None:
                return Reply.XRD, CardPresent(reader=message.reader, status=0).encode()
            response = self.card.process(message.apdu)
            return Reply.XRD, CardData(reader=message.reader, status=0, response=response).encode()
        return Reply.NAK, bytes((NakReason.UNKNOWN_COMMAND,))

    def _lstat(self) -> bytes:
        return bytes((int(self.state.tamper), int(self.state.power_failure)))


class ReaderBus:
    """Simulated readers sharing one line, each answering its own address."""

    def __init__(self, line: Line, readers: list[SimulatedReader]) -> None:
        self.line = line
        self.readers = {r.address: r for r in readers}
        if len(self.readers) != len(readers):
            raise ValueError("two readers share an address")
        self.decoder = FrameDecoder()
        self.ignored = 0
        line.on_data(self._received)

    def _received(self, data: bytes) -> None:
        for cmd in self.decoder.feed(data):
            reader = self.readers.get(cmd.address)
            if cmd.reply or reader is None:
                self.ignored += 1  # for another reader, or another reader's reply
                continue
            try:
                reply = reader.handle(cmd)
            except Exception:
                log.exception("simulated reader %d failed on 0x%02X", cmd.address, cmd.code)
                continue
            self.line.write(encode(reply))
            if reader.moved_to is not None and reader.moved_to not in self.readers:
                del self.readers[reader.address]
                reader.address, reader.moved_to = reader.moved_to, None
                reader._last_seq = reader._last_reply = None
                if reader.channel is not None:
                    reader.channel.reset()
                self.readers[reader.address] = reader
