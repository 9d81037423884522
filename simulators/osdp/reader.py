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
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from drivers.osdp import wiegand
from drivers.osdp.codec import CommandMessage, ReplyMessage
from drivers.osdp.codes import Command, NakReason, Reply, SecurityBlock
from drivers.osdp.commands import (
    Abort,
    AcuReceiveSize,
    BuzzerControl,
    CapabilitiesRequest,
    CommunicationSet,
    IdRequest,
    InputStatusRequest,
    KeepActive,
    KeySet,
    LedControl,
    LocalStatusRequest,
    ManufacturerCommand,
    OutputControl,
    OutputControlCode,
    OutputStatusRequest,
    ReaderStatusRequest,
    TextOutput,
)
from drivers.osdp.frame import Frame, FrameDecoder, encode
from drivers.osdp.messages import MessageError, decode_command
from drivers.osdp.replies import (
    Ack,
    Capability,
    CardFormat,
    CommunicationConfiguration,
    InputStatus,
    KeypadData,
    LocalStatus,
    ManufacturerReply,
    Nak,
    OutputStatus,
    PdCapabilities,
    PdId,
    RawCardData,
    ReaderStatus,
)
from drivers.osdp.secure import SecureChannel, SecureChannelError
from drivers.osdp.transparent import (
    TRANSPARENT_MODE,
    CardData,
    CardPresent,
    Done,
    ExtendedWrite,
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


#: osdp_OUT control codes that leave the output on.
_OUTPUT_ON = frozenset(
    {OutputControlCode.ON, OutputControlCode.ON_AFTER_TIMED, OutputControlCode.TEMPORARY_ON}
)

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
        raw = RawCardData(reader, CardFormat(fmt), bits, data)
        self._events.append((Reply.RAW, raw.encode()))

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
        if any(c not in "0123456789*#" for c in digits):
            raise ValueError("a keypad has digits, * and #")
        self._events.append((Reply.KEYPAD, KeypadData.from_text(reader, digits).encode()))

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
        """The reply's code and data; what does not decode is NAKed with its reason."""
        if cmd.code == Command.POLL and not cmd.data:
            if self.state.tamper != self._reported_tamper:
                self._reported_tamper = self.state.tamper
                return Reply.LSTATR, self._lstat()
            if self._events:
                return self._events.popleft()
            return Reply.ACK, b""
        try:
            message = decode_command(cmd.code, cmd.data)
        except MessageError as exc:
            return Reply.NAK, bytes((exc.reason,))
        reply = self._obey(message, cmd.data, secure=secure)
        return (reply.code, reply.encode()) if isinstance(reply, ReplyMessage) else reply

    def _obey(
        self, message: CommandMessage, data: bytes, *, secure: bool
    ) -> ReplyMessage | tuple[int, bytes]:
        state = self.state
        if isinstance(message, KeySet):
            if not secure:  # a key only inside a session, never in the clear
                return Nak(NakReason.SECURITY_REQUIRED)
            self.scbk = message.key
            self.install_mode = False
            return Ack()
        if isinstance(message, IdRequest):
            ident = self.identity
            major, minor, build = ident.firmware
            return PdId(ident.vendor, ident.model, ident.version, ident.serial, major, minor, build)
        if isinstance(message, CapabilitiesRequest):
            caps = [Capability(*c) for c in CAPABILITIES]
            if self.channel is not None:
                caps.append(Capability(9, 1, 1))  # communication security: AES-128, SCBK-D
            return PdCapabilities(tuple(caps))
        if isinstance(message, LocalStatusRequest):
            return Reply.LSTATR, self._lstat()
        if isinstance(message, InputStatusRequest):
            return InputStatus((0,))
        if isinstance(message, OutputStatusRequest):
            return OutputStatus((state.outputs.get(0, 0),))
        if isinstance(message, ReaderStatusRequest):
            return ReaderStatus((0,))
        if isinstance(message, LedControl):
            state.led = data
        elif isinstance(message, BuzzerControl):
            state.buzzer = data
        elif isinstance(message, TextOutput):
            state.text = data
        elif isinstance(message, OutputControl):
            for record in message.records:
                state.outputs[record.number] = int(record.control in _OUTPUT_ON)
        elif isinstance(message, ManufacturerCommand):
            return ManufacturerReply(message.vendor_code, message.data)
        elif isinstance(message, CommunicationSet):
            # Answered from the old address; the new one holds from the next command.
            self.moved_to = message.address
            return CommunicationConfiguration(message.address, message.baud_rate)
        elif isinstance(message, ExtendedWrite):
            return self._extended_write(message)
        elif not isinstance(message, AcuReceiveSize | KeepActive | Abort):
            return Nak(NakReason.UNKNOWN_COMMAND)
        return Ack()

    def _extended_write(self, message: ExtendedWrite) -> tuple[int, bytes]:
        """osdp_XWR: the mode, and APDUs to the card in transparent mode."""
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
        return LocalStatus(self.state.tamper, self.state.power_failure).encode()


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
