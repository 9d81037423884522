"""OSDP 2.2 command payloads: what the control panel sends (except the PIV and transparent
mode commands, in `drivers.osdp.piv_messages` and `drivers.osdp.transparent`).

Layouts checked against libosdp (src/osdp_cp.c builds them, src/osdp_pd.c parses them) and
frames captured from libosdp 3.2.9 (tests/drivers/osdp/test_osdp_messages.py). Times count
100 ms units unless a field says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Self

from drivers.osdp.codec import (
    AddressAndBaud,
    CommandMessage,
    EmptyCommand,
    MessageError,
    Opaque,
    Reader,
    VendorData,
    as_tuple,
    ascii_text,
    check_size,
    check_uint,
    coerce_enum,
    member,
    redacted,
    unprocessable,
)
from drivers.osdp.codes import Command

SCBK_SIZE = 16


class LedColor(IntEnum):
    BLACK = 0  # off
    RED = 1
    GREEN = 2
    AMBER = 3
    BLUE = 4
    MAGENTA = 5
    CYAN = 6
    WHITE = 7


class LedTemporaryControl(IntEnum):
    NOP = 0  # leave the temporary settings alone
    CANCEL = 1  # end any temporary state, show the permanent one now
    SET = 2  # show the temporary state and start its timer


class LedPermanentControl(IntEnum):
    NOP = 0
    SET = 1


class OutputControlCode(IntEnum):
    NOP = 0
    OFF = 1  # permanent off, abort a timed operation
    ON = 2  # permanent on, abort a timed operation
    OFF_AFTER_TIMED = 3  # permanent off, let a timed operation finish first
    ON_AFTER_TIMED = 4
    TEMPORARY_ON = 5  # on for the timer, then back to the permanent state
    TEMPORARY_OFF = 6


class BuzzerTone(IntEnum):
    """Tone codes; 3 and up are left to the reader, so `BuzzerControl.tone` is any byte."""

    NO_TONE = 0
    OFF = 1
    DEFAULT = 2


class TextCommand(IntEnum):
    PERMANENT_NO_WRAP = 1
    PERMANENT_WRAP = 2
    TEMPORARY_NO_WRAP = 3
    TEMPORARY_WRAP = 4


class KeyType(IntEnum):
    SCBK = 1  # the secure channel base key, AES-128


@dataclass(frozen=True, slots=True)
class Poll(EmptyCommand):
    code: ClassVar[Command] = Command.POLL


@dataclass(frozen=True, slots=True)
class _ReportRequest(CommandMessage):
    reply_type: int = 0

    def __post_init__(self) -> None:
        check_uint("reply type", self.reply_type, 8)

    def encode(self) -> bytes:
        return bytes((self.reply_type,))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        message = cls(reader.u8())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class IdRequest(_ReportRequest):
    """osdp_ID; ``reply_type`` 0 asks for the standard PDID report."""

    code: ClassVar[Command] = Command.ID


@dataclass(frozen=True, slots=True)
class CapabilitiesRequest(_ReportRequest):
    """osdp_CAP; ``reply_type`` 0 asks for the standard PDCAP report."""

    code: ClassVar[Command] = Command.CAP


@dataclass(frozen=True, slots=True)
class LocalStatusRequest(EmptyCommand):
    code: ClassVar[Command] = Command.LSTAT


@dataclass(frozen=True, slots=True)
class InputStatusRequest(EmptyCommand):
    code: ClassVar[Command] = Command.ISTAT


@dataclass(frozen=True, slots=True)
class OutputStatusRequest(EmptyCommand):
    code: ClassVar[Command] = Command.OSTAT


@dataclass(frozen=True, slots=True)
class ReaderStatusRequest(EmptyCommand):
    code: ClassVar[Command] = Command.RSTAT


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One output of osdp_OUT; ``timer`` counts 100 ms units (temporary codes only)."""

    SIZE: ClassVar[int] = 4
    number: int
    control: OutputControlCode
    timer: int = 0

    def __post_init__(self) -> None:
        check_uint("output number", self.number, 8)
        coerce_enum(self, "control", OutputControlCode)
        check_uint("output timer", self.timer, 16)

    def encode(self) -> bytes:
        return bytes((self.number, self.control)) + self.timer.to_bytes(2, "little")

    @classmethod
    def read(cls, reader: Reader) -> OutputRecord:
        number = reader.u8()
        control = member(OutputControlCode, reader.u8(), "output control code")
        return cls(number, control, reader.u16())


def _records(data: bytes, size: int, what: str) -> list[Reader]:
    if not data or len(data) % size:
        raise MessageError(
            f"{what}: {len(data)} bytes is not a whole number of {size}-byte records"
        )
    return [Reader(data[i : i + size], what) for i in range(0, len(data), size)]


@dataclass(frozen=True, slots=True)
class OutputControl(CommandMessage):
    """osdp_OUT: one or more output records."""

    code: ClassVar[Command] = Command.OUT
    records: tuple[OutputRecord, ...]

    def __post_init__(self) -> None:
        if not as_tuple(self, "records"):
            raise ValueError("osdp_OUT needs at least one record")

    def encode(self) -> bytes:
        return b"".join(record.encode() for record in self.records)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(tuple(OutputRecord.read(r) for r in _records(data, OutputRecord.SIZE, "OUT")))


@dataclass(frozen=True, slots=True)
class TemporaryLed:
    """The temporary half of an LED record; times count 100 ms units."""

    control: LedTemporaryControl = LedTemporaryControl.NOP
    on_time: int = 0
    off_time: int = 0
    on_color: LedColor = LedColor.BLACK
    off_color: LedColor = LedColor.BLACK
    timer: int = 0

    def __post_init__(self) -> None:
        coerce_enum(self, "control", LedTemporaryControl)
        check_uint("on time", self.on_time, 8)
        check_uint("off time", self.off_time, 8)
        coerce_enum(self, "on_color", LedColor)
        coerce_enum(self, "off_color", LedColor)
        check_uint("timer", self.timer, 16)

    def encode(self) -> bytes:
        head = bytes((self.control, self.on_time, self.off_time, self.on_color, self.off_color))
        return head + self.timer.to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class PermanentLed:
    """The permanent half of an LED record; times count 100 ms units."""

    control: LedPermanentControl = LedPermanentControl.NOP
    on_time: int = 0
    off_time: int = 0
    on_color: LedColor = LedColor.BLACK
    off_color: LedColor = LedColor.BLACK

    def __post_init__(self) -> None:
        coerce_enum(self, "control", LedPermanentControl)
        check_uint("on time", self.on_time, 8)
        check_uint("off time", self.off_time, 8)
        coerce_enum(self, "on_color", LedColor)
        coerce_enum(self, "off_color", LedColor)

    def encode(self) -> bytes:
        return bytes((self.control, self.on_time, self.off_time, self.on_color, self.off_color))


def _read_colors(reader: Reader) -> tuple[int, int, LedColor, LedColor]:
    on_time, off_time = reader.u8(), reader.u8()
    on_color = member(LedColor, reader.u8(), "LED on color")
    return on_time, off_time, on_color, member(LedColor, reader.u8(), "LED off color")


@dataclass(frozen=True, slots=True)
class LedRecord:
    """One LED of osdp_LED (14 bytes): reader, LED number, temporary then permanent state."""

    SIZE: ClassVar[int] = 14
    reader: int
    led: int
    temporary: TemporaryLed = field(default_factory=TemporaryLed)
    permanent: PermanentLed = field(default_factory=PermanentLed)

    def __post_init__(self) -> None:
        check_uint("reader", self.reader, 8)
        check_uint("LED number", self.led, 8)

    def encode(self) -> bytes:
        return bytes((self.reader, self.led)) + self.temporary.encode() + self.permanent.encode()

    @classmethod
    def read(cls, reader: Reader) -> LedRecord:
        number, led = reader.u8(), reader.u8()
        temporary_control = member(LedTemporaryControl, reader.u8(), "LED temporary control")
        temporary = TemporaryLed(temporary_control, *_read_colors(reader), reader.u16())
        permanent_control = member(LedPermanentControl, reader.u8(), "LED permanent control")
        return cls(number, led, temporary, PermanentLed(permanent_control, *_read_colors(reader)))


@dataclass(frozen=True, slots=True)
class LedControl(CommandMessage):
    """osdp_LED: one or more LED records."""

    code: ClassVar[Command] = Command.LED
    records: tuple[LedRecord, ...]

    def __post_init__(self) -> None:
        if not as_tuple(self, "records"):
            raise ValueError("osdp_LED needs at least one record")

    def encode(self) -> bytes:
        return b"".join(record.encode() for record in self.records)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(tuple(LedRecord.read(r) for r in _records(data, LedRecord.SIZE, "LED")))


@dataclass(frozen=True, slots=True)
class BuzzerControl(CommandMessage):
    """osdp_BUZ; times count 100 ms units, ``count`` 0 repeats until told otherwise."""

    code: ClassVar[Command] = Command.BUZ
    reader: int
    tone: int = BuzzerTone.DEFAULT
    on_time: int = 0
    off_time: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        for name in ("reader", "tone", "on_time", "off_time", "count"):
            check_uint(name, getattr(self, name), 8)

    def encode(self) -> bytes:
        return bytes((self.reader, self.tone, self.on_time, self.off_time, self.count))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        message = cls(*reader.take(5))
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class TextOutput(CommandMessage):
    """osdp_TEXT: ASCII ``text`` at ``row``/``column`` (from 1); ``temp_time`` in seconds."""

    code: ClassVar[Command] = Command.TEXT
    reader: int
    command: TextCommand
    text: str
    temp_time: int = 0
    row: int = 1
    column: int = 1

    def __post_init__(self) -> None:
        check_uint("reader", self.reader, 8)
        coerce_enum(self, "command", TextCommand)
        check_uint("temporary time", self.temp_time, 8)
        check_uint("row", self.row, 8)
        check_uint("column", self.column, 8)
        if not self.text.isascii() or len(self.text) > 0xFF:
            raise ValueError("text must be ASCII, at most 255 characters")

    def encode(self) -> bytes:
        head = (self.reader, self.command, self.temp_time, self.row, self.column, len(self.text))
        return bytes(head) + self.text.encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        number = reader.u8()
        command = member(TextCommand, reader.u8(), "text command")
        temp_time, row, column, length = reader.take(4)
        text = ascii_text(reader.take(length), "text")
        reader.end()
        return cls(number, command, text, temp_time, row, column)


@dataclass(frozen=True, slots=True)
class CommunicationSet(AddressAndBaud, CommandMessage):
    """osdp_COMSET: the address and baud rate the reader is to use from now on."""

    code: ClassVar[Command] = Command.COMSET


@dataclass(frozen=True, slots=True)
class KeySet(CommandMessage):
    """osdp_KEYSET: a new secure channel base key. The key never shows in a repr."""

    code: ClassVar[Command] = Command.KEYSET
    key: bytes = field(repr=False)
    key_type: KeyType = KeyType.SCBK

    def __post_init__(self) -> None:
        coerce_enum(self, "key_type", KeyType)
        check_size("SCBK", self.key, SCBK_SIZE)

    def __repr__(self) -> str:
        return f"KeySet(key_type={self.key_type!r}, key={redacted(self.key)})"

    def encode(self) -> bytes:
        return bytes((self.key_type, len(self.key))) + self.key

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        key_type = member(KeyType, reader.u8(), "key type")
        length = reader.u8()
        if length != SCBK_SIZE:
            raise unprocessable(f"an SCBK is {SCBK_SIZE} bytes, not {length}")
        key = reader.take(length)
        reader.end()
        return cls(key, key_type)


@dataclass(frozen=True, slots=True)
class AcuReceiveSize(CommandMessage):
    """osdp_ACURXSIZE: the largest reply the control panel accepts, in bytes."""

    code: ClassVar[Command] = Command.ACURXSIZE
    size: int

    def __post_init__(self) -> None:
        check_uint("receive size", self.size, 16)

    def encode(self) -> bytes:
        return self.size.to_bytes(2, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        message = cls(reader.u16())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class KeepActive(CommandMessage):
    """osdp_KEEPACTIVE: keep the card session open ``milliseconds`` longer."""

    code: ClassVar[Command] = Command.KEEPACTIVE
    milliseconds: int

    def __post_init__(self) -> None:
        check_uint("keep-active time", self.milliseconds, 16)

    def encode(self) -> bytes:
        return self.milliseconds.to_bytes(2, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        message = cls(reader.u16())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class Abort(EmptyCommand):
    code: ClassVar[Command] = Command.ABORT


@dataclass(frozen=True, slots=True)
class ManufacturerCommand(VendorData, CommandMessage):
    """osdp_MFG: the vendor's 3-byte OUI as sent, then data of the vendor's own."""

    code: ClassVar[Command] = Command.MFG


@dataclass(frozen=True, slots=True)
class Challenge(Opaque, CommandMessage):
    """osdp_CHLNG: the control panel's random number (drivers/osdp/secure.py reads it)."""

    code: ClassVar[Command] = Command.CHLNG
    SIZE: ClassVar[int] = 8


@dataclass(frozen=True, slots=True)
class ServerCryptogram(Opaque, CommandMessage):
    """osdp_SCRYPT: the control panel's cryptogram (drivers/osdp/secure.py reads it)."""

    code: ClassVar[Command] = Command.SCRYPT
    SIZE: ClassVar[int] = 16
