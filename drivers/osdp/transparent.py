"""osdp_XWR and osdp_XRD: extended write and read, and transparent smart-card mode.

Both start with a mode and a command (XWR "PCMND") or reply (XRD "PREPLY") byte. Mode 0
is the reader's normal operation, where the control panel reads and sets the mode; mode 1
is transparent mode, in which the control panel talks ISO 7816-4 APDUs to the card through
the reader. Layouts: the SIA conformance tool (Security-Industry-Association/
libosdp-conformance src-lib/oo-xwrite.c, oo-printmsg.c: "per table 34 in 60839-11-5"),
OSDP.Net (Model/CommandData/ExtendedWrite.cs) and libosdp src/osdp_trs.c.

    XWR 0/1  get mode           -
    XWR 0/2  set mode           mode, config
    XWR 1/1  send APDU          reader, APDU
    XWR 1/2  done (disconnect)  reader
    XWR 1/3  secure PIN entry   reader, parameters
    XWR 1/4  card scan          reader

    XRD 0/1  mode report        mode, config
    XRD 0/2  card info          reader, protocol, CSN length, data length, CSN, data
    XRD 1/1  card present       reader, status
    XRD 1/2  card data          reader, status, response APDU
    XRD 1/3  PIN entry done     reader, status, tries
    XRD m/0  error              (kept as sent)

libosdp's unfinished osdp_trs.c puts an APDU length byte after the reader number; the
conformance tool and OSDP.Net do not, and neither does this module.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeVar

from drivers.osdp.codec import (
    CommandMessage,
    MessageError,
    Reader,
    ReplyMessage,
    check_uint,
    redacted,
    unprocessable,
)
from drivers.osdp.codes import Command, Reply

NORMAL_MODE = 0
TRANSPARENT_MODE = 1


class ExtendedWrite(CommandMessage):
    """An osdp_XWR command; ``MODE`` and ``COMMAND`` are its first two bytes."""

    __slots__ = ()
    code: ClassVar[Command] = Command.XWR
    MODE: ClassVar[int]
    COMMAND: ClassVar[int]

    @abstractmethod
    def _body(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def _parse(cls, reader: Reader) -> Self: ...

    def encode(self) -> bytes:
        return bytes((self.MODE, self.COMMAND)) + self._body()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        head = (reader.u8(), reader.u8())
        if head != (cls.MODE, cls.COMMAND):
            raise unprocessable(f"{cls.__name__} is XWR {cls.MODE}/{cls.COMMAND}, not {head}")
        return cls._parse(reader)


class ExtendedRead(ReplyMessage):
    """An osdp_XRD reply; ``MODE`` and ``REPLY`` are its first two bytes."""

    __slots__ = ()
    code: ClassVar[Reply] = Reply.XRD
    MODE: ClassVar[int]
    REPLY: ClassVar[int]

    @abstractmethod
    def _body(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def _parse(cls, reader: Reader, mode: int) -> Self: ...

    def _mode(self) -> int:
        return self.MODE

    @classmethod
    def _accepts(cls, mode: int, reply: int) -> bool:
        return (mode, reply) == (cls.MODE, cls.REPLY)

    def encode(self) -> bytes:
        return bytes((self._mode(), self.REPLY)) + self._body()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        mode, reply = reader.u8(), reader.u8()
        if not cls._accepts(mode, reply):
            raise unprocessable(f"XRD {mode}/{reply} is not a {cls.__name__}")
        return cls._parse(reader, mode)


def _byte_fields(message: object, *names: str) -> None:
    for name in names:
        check_uint(name, getattr(message, name), 8)


# --- osdp_XWR ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetMode(ExtendedWrite):
    """Asks which mode the reader is in; answered by `ModeReport`."""

    MODE: ClassVar[int] = NORMAL_MODE
    COMMAND: ClassVar[int] = 1

    def _body(self) -> bytes:
        return b""

    @classmethod
    def _parse(cls, reader: Reader) -> Self:
        reader.end()
        return cls()


@dataclass(frozen=True, slots=True)
class SetMode(ExtendedWrite):
    """Switches the reader to ``mode``; in mode 0, ``config`` 1 enables `CardInfo` reports."""

    MODE: ClassVar[int] = NORMAL_MODE
    COMMAND: ClassVar[int] = 2
    mode: int
    config: int = 0

    def __post_init__(self) -> None:
        _byte_fields(self, "mode", "config")

    def _body(self) -> bytes:
        return bytes((self.mode, self.config))

    @classmethod
    def _parse(cls, reader: Reader) -> Self:
        message = cls(reader.u8(), reader.u8())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class SendApdu(ExtendedWrite):
    """A command APDU for the card at ``reader``; the answer comes as `CardData`. The APDU
    (a VERIFY carries the PIN) never shows in a repr."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    COMMAND: ClassVar[int] = 1
    reader: int
    apdu: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _byte_fields(self, "reader")

    def __repr__(self) -> str:
        return f"SendApdu(reader={self.reader}, apdu={redacted(self.apdu)})"

    def _body(self) -> bytes:
        return bytes((self.reader,)) + self.apdu

    @classmethod
    def _parse(cls, reader: Reader) -> Self:
        return cls(reader.u8(), reader.rest())


@dataclass(frozen=True, slots=True)
class _ReaderOnly(ExtendedWrite):
    reader: int

    def __post_init__(self) -> None:
        _byte_fields(self, "reader")

    def _body(self) -> bytes:
        return bytes((self.reader,))

    @classmethod
    def _parse(cls, reader: Reader) -> Self:
        message = cls(reader.u8())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class Done(_ReaderOnly):
    """Ends the reader's connection to the card."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    COMMAND: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class SecurePinEntry(ExtendedWrite):
    """Has the reader collect a PIN into a VERIFY APDU for the card; ``parameters`` (timeouts,
    PIN block format, the APDU template: see libosdp src/osdp_trs.c) are kept as sent."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    COMMAND: ClassVar[int] = 3
    reader: int
    parameters: bytes

    def __post_init__(self) -> None:
        _byte_fields(self, "reader")

    def _body(self) -> bytes:
        return bytes((self.reader,)) + self.parameters

    @classmethod
    def _parse(cls, reader: Reader) -> Self:
        return cls(reader.u8(), reader.rest())


@dataclass(frozen=True, slots=True)
class CardScan(_ReaderOnly):
    """Has the reader look for a card now; answered with `CardPresent`."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    COMMAND: ClassVar[int] = 4


# --- osdp_XRD ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeReport(ExtendedRead):
    MODE: ClassVar[int] = NORMAL_MODE
    REPLY: ClassVar[int] = 1
    mode: int
    config: int = 0

    def __post_init__(self) -> None:
        _byte_fields(self, "mode", "config")

    def _body(self) -> bytes:
        return bytes((self.mode, self.config))

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        message = cls(reader.u8(), reader.u8())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class CardInfo(ExtendedRead):
    """A card seen in mode 0 with card info reports on: its serial number (CSN) and the
    protocol's data (the ATR for contact cards); ``protocol`` 0 is ISO 7816 T=0/T=1, 1 is
    ISO 14443 A/B (libosdp src/osdp_trs.c)."""

    MODE: ClassVar[int] = NORMAL_MODE
    REPLY: ClassVar[int] = 2
    reader: int
    protocol: int
    csn: bytes
    protocol_data: bytes = b""

    def __post_init__(self) -> None:
        _byte_fields(self, "reader", "protocol")
        check_uint("CSN length", len(self.csn), 8)
        check_uint("protocol data length", len(self.protocol_data), 8)

    def _body(self) -> bytes:
        head = (self.reader, self.protocol, len(self.csn), len(self.protocol_data))
        return bytes(head) + self.csn + self.protocol_data

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        number, protocol, csn_size, data_size = reader.take(4)
        message = cls(number, protocol, reader.take(csn_size), reader.take(data_size))
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class CardPresent(ExtendedRead):
    """In transparent mode: a card is at ``reader`` (``status`` as the reader reports it)."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    REPLY: ClassVar[int] = 1
    reader: int
    status: int

    def __post_init__(self) -> None:
        _byte_fields(self, "reader", "status")

    def _body(self) -> bytes:
        return bytes((self.reader, self.status))

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        message = cls(reader.u8(), reader.u8())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class CardData(ExtendedRead):
    """The card's response APDU (data and status word) to a `SendApdu`. It may hold a
    FASC-N, so it never shows in a repr."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    REPLY: ClassVar[int] = 2
    reader: int
    status: int
    response: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _byte_fields(self, "reader", "status")

    def __repr__(self) -> str:
        return (
            f"CardData(reader={self.reader}, status={self.status}, "
            f"response={redacted(self.response)})"
        )

    def _body(self) -> bytes:
        return bytes((self.reader, self.status)) + self.response

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        return cls(reader.u8(), reader.u8(), reader.rest())


@dataclass(frozen=True, slots=True)
class PinEntryComplete(ExtendedRead):
    """A `SecurePinEntry` is over: ``status`` and the card's ``tries`` left."""

    MODE: ClassVar[int] = TRANSPARENT_MODE
    REPLY: ClassVar[int] = 3
    reader: int
    status: int
    tries: int

    def __post_init__(self) -> None:
        _byte_fields(self, "reader", "status", "tries")

    def _body(self) -> bytes:
        return bytes((self.reader, self.status, self.tries))

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        message = cls(*reader.take(3))
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class ExtendedReadError(ExtendedRead):
    """XRD with reply code 0: the reader could not do what was asked in ``mode``. The
    standard's detail is not settled between implementations, so ``data`` is kept as sent."""

    REPLY: ClassVar[int] = 0
    mode: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if self.mode not in (NORMAL_MODE, TRANSPARENT_MODE):
            raise ValueError(f"mode {self.mode} is neither 0 nor 1")

    def _mode(self) -> int:
        return self.mode

    @classmethod
    def _accepts(cls, mode: int, reply: int) -> bool:
        return reply == cls.REPLY and mode in (NORMAL_MODE, TRANSPARENT_MODE)

    def _body(self) -> bytes:
        return self.data

    @classmethod
    def _parse(cls, reader: Reader, mode: int) -> Self:
        return cls(mode, reader.rest())


_WRITES: dict[tuple[int, int], type[ExtendedWrite]] = {
    (cls.MODE, cls.COMMAND): cls
    for cls in (GetMode, SetMode, SendApdu, Done, SecurePinEntry, CardScan)
}
_READS: dict[tuple[int, int], type[ExtendedRead]] = {
    (cls.MODE, cls.REPLY): cls
    for cls in (ModeReport, CardInfo, CardPresent, CardData, PinEntryComplete)
}
for _mode in (NORMAL_MODE, TRANSPARENT_MODE):
    _READS[(_mode, 0)] = ExtendedReadError


T = TypeVar("T")


def _pick(table: dict[tuple[int, int], type[T]], data: bytes, what: str) -> type[T]:
    if len(data) < 2:
        raise MessageError(f"{what} needs a mode and a code, got {len(data)} bytes")
    cls = table.get((data[0], data[1]))
    if cls is None:
        raise unprocessable(f"no {what} {data[0]}/{data[1]}")
    return cls


def decode_extended_write(data: bytes) -> ExtendedWrite:
    """The osdp_XWR command ``data`` holds, by its mode and command bytes."""
    return _pick(_WRITES, data, "osdp_XWR").decode(data)


def decode_extended_read(data: bytes) -> ExtendedRead:
    """The osdp_XRD reply ``data`` holds, by its mode and reply bytes."""
    return _pick(_READS, data, "osdp_XRD").decode(data)


__all__ = [
    "CardData",
    "CardInfo",
    "CardPresent",
    "CardScan",
    "Done",
    "ExtendedRead",
    "ExtendedReadError",
    "ExtendedWrite",
    "GetMode",
    "ModeReport",
    "PinEntryComplete",
    "SecurePinEntry",
    "SendApdu",
    "SetMode",
    "decode_extended_read",
    "decode_extended_write",
]
