"""OSDP 2.2 reply payloads: what the reader sends (except the PIV and transparent mode
replies, in `drivers.osdp.piv_messages` and `drivers.osdp.transparent`).

Layouts checked against libosdp (src/osdp_pd.c builds them, src/osdp_cp.c parses them) and
frames captured from libosdp 3.2.9 (tests/drivers/osdp/test_osdp_messages.py). Keypad keys and
card data never show in a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Self

from drivers.osdp.codec import (
    AddressAndBaud,
    EmptyReply,
    MessageError,
    Opaque,
    Reader,
    ReplyMessage,
    VendorData,
    as_tuple,
    ascii_text,
    check_uint,
    check_vendor,
    coerce_enum,
    known,
    member,
    redacted,
    unprocessable,
)
from drivers.osdp.codes import NakReason, Reply


class FunctionCode(IntEnum):
    """osdp_PDCAP function codes (OSDP 2.2 annex B; libosdp include/osdp.h)."""

    CONTACT_STATUS_MONITORING = 1
    OUTPUT_CONTROL = 2
    CARD_DATA_FORMAT = 3
    READER_LED_CONTROL = 4
    READER_AUDIBLE_OUTPUT = 5
    READER_TEXT_OUTPUT = 6
    TIME_KEEPING = 7
    CHECK_CHARACTER_SUPPORT = 8
    COMMUNICATION_SECURITY = 9
    RECEIVE_BUFFERSIZE = 10
    LARGEST_COMBINED_MESSAGE_SIZE = 11
    SMART_CARD_SUPPORT = 12
    READERS = 13
    BIOMETRICS = 14
    SECURE_PIN_ENTRY = 15
    OSDP_VERSION = 16


class CardFormat(IntEnum):
    """osdp_RAW format codes."""

    RAW_UNSPECIFIED = 0
    WIEGAND = 1


class ReadDirection(IntEnum):
    FORWARD = 0
    REVERSE = 1


@dataclass(frozen=True, slots=True)
class Ack(EmptyReply):
    code: ClassVar[Reply] = Reply.ACK


@dataclass(frozen=True, slots=True)
class Busy(EmptyReply):
    code: ClassVar[Reply] = Reply.BUSY


@dataclass(frozen=True, slots=True)
class Nak(ReplyMessage):
    """osdp_NAK: a reason (a `NakReason` where the standard defines it) and optional data."""

    code: ClassVar[Reply] = Reply.NAK
    reason: int
    data: bytes = b""

    def __post_init__(self) -> None:
        check_uint("NAK reason", self.reason, 8)
        object.__setattr__(self, "reason", known(NakReason, self.reason))

    def encode(self) -> bytes:
        return bytes((self.reason,)) + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        return cls(reader.u8(), reader.rest())


@dataclass(frozen=True, slots=True)
class PdId(ReplyMessage):
    """osdp_PDID: vendor OUI (as sent), model, version, serial number, firmware version."""

    code: ClassVar[Reply] = Reply.PDID
    vendor_code: bytes
    model: int
    version: int
    serial_number: int
    firmware_major: int
    firmware_minor: int
    firmware_build: int

    def __post_init__(self) -> None:
        check_vendor(self.vendor_code)
        for name in ("model", "version", "firmware_major", "firmware_minor", "firmware_build"):
            check_uint(name, getattr(self, name), 8)
        check_uint("serial number", self.serial_number, 32)

    def encode(self) -> bytes:
        return b"".join(
            (
                self.vendor_code,
                bytes((self.model, self.version)),
                self.serial_number.to_bytes(4, "little"),
                bytes((self.firmware_major, self.firmware_minor, self.firmware_build)),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        vendor, model, version, serial = reader.take(3), reader.u8(), reader.u8(), reader.u32()
        message = cls(vendor, model, version, serial, *reader.take(3))
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class Capability:
    """One osdp_PDCAP entry; ``function`` is a `FunctionCode` where the standard has one."""

    function: int
    compliance: int
    number: int

    def __post_init__(self) -> None:
        for name in ("function", "compliance", "number"):
            check_uint(name, getattr(self, name), 8)
        object.__setattr__(self, "function", known(FunctionCode, self.function))

    def encode(self) -> bytes:
        return bytes((self.function, self.compliance, self.number))


@dataclass(frozen=True, slots=True)
class PdCapabilities(ReplyMessage):
    """osdp_PDCAP. Function codes the standard adds later are kept as plain ints, so a
    newer reader's report still decodes."""

    code: ClassVar[Reply] = Reply.PDCAP
    capabilities: tuple[Capability, ...]

    def __post_init__(self) -> None:
        as_tuple(self, "capabilities")

    def get(self, function: int) -> Capability | None:
        """The entry for ``function``, or None when the reader does not report it."""
        return next((c for c in self.capabilities if c.function == function), None)

    def _size(self, function: FunctionCode) -> int | None:
        # Codes 10 and 11 carry a 16-bit size: the LSB in the compliance byte, the MSB in
        # the number byte (libosdp src/osdp_pd.c, its implicit RECEIVE_BUFFERSIZE entry).
        entry = self.get(function)
        return None if entry is None else entry.compliance | (entry.number << 8)

    @property
    def receive_buffer_size(self) -> int | None:
        return self._size(FunctionCode.RECEIVE_BUFFERSIZE)

    @property
    def largest_combined_message_size(self) -> int | None:
        return self._size(FunctionCode.LARGEST_COMBINED_MESSAGE_SIZE)

    def encode(self) -> bytes:
        return b"".join(c.encode() for c in self.capabilities)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) % 3:
            raise MessageError(f"PDCAP: {len(data)} bytes is not a whole number of entries")
        return cls(tuple(Capability(*data[i : i + 3]) for i in range(0, len(data), 3)))


@dataclass(frozen=True, slots=True)
class LocalStatus(ReplyMessage):
    """osdp_LSTATR: the reader's own tamper switch and power supply."""

    code: ClassVar[Reply] = Reply.LSTATR
    tamper: bool
    power_failure: bool

    def encode(self) -> bytes:
        return bytes((int(self.tamper), int(self.power_failure)))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        tamper, power = reader.u8(), reader.u8()
        reader.end()
        if tamper > 1 or power > 1:
            raise unprocessable(f"LSTATR statuses are 0 or 1, got {tamper} and {power}")
        return cls(bool(tamper), bool(power))


@dataclass(frozen=True, slots=True)
class _StatusList:
    """One status byte per input, output or reader, in order."""

    states: tuple[int, ...]

    def __post_init__(self) -> None:
        as_tuple(self, "states")
        for state in self.states:
            check_uint("status", state, 8)

    def encode(self) -> bytes:
        return bytes(self.states)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(tuple(data))


@dataclass(frozen=True, slots=True)
class InputStatus(_StatusList, ReplyMessage):
    """osdp_ISTATR: 0 inactive, 1 active, for each input."""

    code: ClassVar[Reply] = Reply.ISTATR


@dataclass(frozen=True, slots=True)
class OutputStatus(_StatusList, ReplyMessage):
    """osdp_OSTATR: 0 inactive, 1 active, for each output."""

    code: ClassVar[Reply] = Reply.OSTATR


@dataclass(frozen=True, slots=True)
class ReaderStatus(_StatusList, ReplyMessage):
    """osdp_RSTATR: 0 normal, 1 not connected, 2 tampered, for each attached reader."""

    code: ClassVar[Reply] = Reply.RSTATR


@dataclass(frozen=True, slots=True)
class RawCardData(ReplyMessage):
    """osdp_RAW: ``bit_count`` card bits packed most significant first, the last byte
    padded; `drivers.osdp.wiegand` reads them. The data never shows in a repr."""

    code: ClassVar[Reply] = Reply.RAW
    reader: int
    format: CardFormat
    bit_count: int
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_uint("reader", self.reader, 8)
        coerce_enum(self, "format", CardFormat)
        check_uint("bit count", self.bit_count, 16)
        if len(self.data) != (self.bit_count + 7) // 8:
            raise ValueError(f"{self.bit_count} bits take {(self.bit_count + 7) // 8} bytes")

    def __repr__(self) -> str:
        return (
            f"RawCardData(reader={self.reader}, format={self.format!r}, "
            f"bit_count={self.bit_count}, data={redacted(self.data)})"
        )

    def encode(self) -> bytes:
        return bytes((self.reader, self.format)) + self.bit_count.to_bytes(2, "little") + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        number = reader.u8()
        card_format = member(CardFormat, reader.u8(), "card format")
        bit_count = reader.u16()
        card = reader.take((bit_count + 7) // 8)
        reader.end()
        return cls(number, card_format, bit_count, card)


@dataclass(frozen=True, slots=True)
class FormattedCardData(ReplyMessage):
    """osdp_FMT: card data as ASCII characters (deprecated in 2.2.2, still on the wire).
    The characters never show in a repr."""

    code: ClassVar[Reply] = Reply.FMT
    reader: int
    direction: ReadDirection
    text: str = field(repr=False)

    def __post_init__(self) -> None:
        check_uint("reader", self.reader, 8)
        coerce_enum(self, "direction", ReadDirection)
        if not self.text.isascii() or len(self.text) > 0xFF:
            raise ValueError("card characters must be ASCII, at most 255")

    def __repr__(self) -> str:
        return (
            f"FormattedCardData(reader={self.reader}, direction={self.direction!r}, "
            f"text=<{len(self.text)} characters>)"
        )

    def encode(self) -> bytes:
        head = bytes((self.reader, self.direction, len(self.text)))
        return head + self.text.encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        number = reader.u8()
        direction = member(ReadDirection, reader.u8(), "read direction")
        text = ascii_text(reader.take(reader.u8()), "card characters")
        reader.end()
        return cls(number, direction, text)


#: osdp_KEYPAD key encoding: digits as ASCII, '*' (clear) as DEL, '#' (enter) as CR,
#: function keys as 'A'..'H' (OSDP 2.2 osdp_KEYPAD; bytedreamer/OSDP.Net KeypadData.cs).
_KEY_CHARS = {0x7F: "*", 0x0D: "#"}
_CHAR_KEYS = {char: code for code, char in _KEY_CHARS.items()}


@dataclass(frozen=True, slots=True)
class KeypadData(ReplyMessage):
    """osdp_KEYPAD: the keys pressed, as coded on the wire. A PIN is in here, so the keys
    never show in a repr."""

    code: ClassVar[Reply] = Reply.KEYPAD
    reader: int
    keys: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_uint("reader", self.reader, 8)
        check_uint("key count", len(self.keys), 8)

    def __repr__(self) -> str:
        return f"KeypadData(reader={self.reader}, keys={redacted(self.keys)})"

    @classmethod
    def from_text(cls, reader: int, text: str) -> Self:
        """From keys as printed on the keypad: '0'-'9', '*', '#', 'A'-'H'."""
        return cls(reader, bytes(_CHAR_KEYS.get(char, ord(char)) for char in text))

    def text(self) -> str:
        """The keys as printed on the keypad ('*' for 0x7F, '#' for 0x0D)."""
        return "".join(_KEY_CHARS.get(key, chr(key)) for key in self.keys)

    def encode(self) -> bytes:
        return bytes((self.reader, len(self.keys))) + self.keys

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        number = reader.u8()
        keys = reader.take(reader.u8())
        reader.end()
        return cls(number, keys)


@dataclass(frozen=True, slots=True)
class CommunicationConfiguration(AddressAndBaud, ReplyMessage):
    """osdp_COM: the address and baud rate the reader answers on from now on."""

    code: ClassVar[Reply] = Reply.COM


@dataclass(frozen=True, slots=True)
class ManufacturerReply(VendorData, ReplyMessage):
    """osdp_MFGREP: the vendor's 3-byte OUI as sent, then data of the vendor's own."""

    code: ClassVar[Reply] = Reply.MFGREP


@dataclass(frozen=True, slots=True)
class ClientCryptogram(Opaque, ReplyMessage):
    """osdp_CCRYPT: client UID, PD random, PD cryptogram (drivers/osdp/secure.py reads it)."""

    code: ClassVar[Reply] = Reply.CCRYPT
    SIZE: ClassVar[int] = 32


@dataclass(frozen=True, slots=True)
class InitialRmac(Opaque, ReplyMessage):
    """osdp_RMAC_I: the initial reply MAC (drivers/osdp/secure.py reads it)."""

    code: ClassVar[Reply] = Reply.RMAC_I
    SIZE: ClassVar[int] = 16
