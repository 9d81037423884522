"""What every OSDP payload codec shares: its error, its base classes and a bounded reader.

A payload is the DATA field of a packet (`drivers.osdp.frame.Frame.data`), without the
command or reply code. Decoding never raises anything but `MessageError`, whatever the
bytes; building a message with a field out of range raises `ValueError`, as `Frame` does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self, TypeVar

from drivers.errors import MalformedData
from drivers.osdp.codes import Command, NakReason, Reply


class MessageError(MalformedData):
    """A payload that does not decode. ``reason`` is the NAK a PD would answer with
    (BAD_LENGTH, UNKNOWN_COMMAND, UNABLE_TO_PROCESS), ``code`` the command or reply code."""

    def __init__(
        self, message: str, reason: NakReason = NakReason.BAD_LENGTH, code: int | None = None
    ) -> None:
        self.reason = reason
        self.code = code
        super().__init__(message)


def unprocessable(message: str) -> MessageError:
    """The error for a payload of the right length whose content makes no sense."""
    return MessageError(message, NakReason.UNABLE_TO_PROCESS)


E = TypeVar("E", bound=IntEnum)


def member(enum: type[E], value: int, what: str) -> E:
    """``value`` as a member of ``enum``; a value the standard does not define is an
    UNABLE_TO_PROCESS error."""
    try:
        return enum(value)
    except ValueError:
        raise unprocessable(f"{what} {value} is not a {enum.__name__}") from None


def known(enum: type[E], value: int) -> int:
    """``value`` as a member of ``enum`` where it has one, else the plain int: for fields
    whose codes grow with the standard or are the vendor's (NAK reasons, PDCAP functions)."""
    try:
        return enum(value)
    except ValueError:
        return value


def check_uint(name: str, value: int, bits: int) -> None:
    """Raises ValueError unless ``value`` fits an unsigned field of ``bits`` bits."""
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} {value} out of 0..{(1 << bits) - 1}")


def check_size(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


def redacted(data: bytes) -> str:
    """How a secret or personal field shows in a repr: its size only."""
    return f"<{len(data)} bytes>"


BROADCAST = 0x7F


def as_tuple(instance: object, name: str) -> tuple[object, ...]:
    """Stores the sequence field ``name`` of a frozen dataclass as a tuple and returns it."""
    value = tuple(getattr(instance, name))
    object.__setattr__(instance, name, value)
    return value


def coerce_enum(instance: object, name: str, enum: type[IntEnum]) -> None:
    """Stores field ``name`` as a member of ``enum``; ValueError for a value it lacks."""
    object.__setattr__(instance, name, enum(getattr(instance, name)))


def ascii_text(data: bytes, what: str) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise unprocessable(f"{what} is not ASCII") from None


def check_address(address: int) -> None:
    """A reader's address: 0..0x7E (0x7F is the broadcast address)."""
    if not 0 <= address < BROADCAST:
        raise ValueError(f"address {address} out of 0..0x7E")


def check_vendor(vendor_code: bytes) -> None:
    """A vendor code is the 3-byte IEEE OUI, kept in the order sent."""
    check_size("vendor code", vendor_code, 3)


class Reader:
    """Reads little-endian fields off a payload; running short is a BAD_LENGTH error."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int) -> bytes:
        if size > self.remaining:
            raise MessageError(
                f"{self._what}: {size} more bytes wanted at offset {self._pos}, "
                f"{self.remaining} left"
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def end(self) -> None:
        """Raises unless every byte was read: fixed-length payloads allow no trailer."""
        if self.remaining:
            raise MessageError(f"{self._what}: {self.remaining} bytes past the end")


class Message(ABC):
    """One command or reply payload; ``code`` is its command or reply code."""

    __slots__ = ()
    code: ClassVar[int]

    @abstractmethod
    def encode(self) -> bytes:
        """The DATA field of the packet that carries this message."""

    @classmethod
    @abstractmethod
    def decode(cls, data: bytes) -> Self:
        """The message a DATA field holds; raises `MessageError` for anything else."""


class CommandMessage(Message):
    """A payload the control panel sends."""

    __slots__ = ()
    code: ClassVar[Command]


class ReplyMessage(Message):
    """A payload the reader sends."""

    __slots__ = ()
    code: ClassVar[Reply]


class _Empty:
    """No data at all."""

    __slots__ = ()

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if data:
            raise MessageError(f"{cls.__name__} carries no data, got {len(data)} bytes")
        return cls()


class EmptyCommand(_Empty, CommandMessage):
    """A command without data (POLL, LSTAT, ABORT...)."""

    __slots__ = ()


class EmptyReply(_Empty, ReplyMessage):
    """A reply without data (ACK, BUSY)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class VendorData:
    """osdp_MFG and osdp_MFGREP: the vendor's 3-byte OUI as sent, then its own data."""

    vendor_code: bytes
    data: bytes = b""

    def __post_init__(self) -> None:
        check_vendor(self.vendor_code)

    def encode(self) -> bytes:
        return self.vendor_code + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        return cls(reader.take(3), reader.rest())


@dataclass(frozen=True, slots=True)
class AddressAndBaud:
    """osdp_COMSET and osdp_COM: a reader address and a baud rate (32 bits, LE)."""

    address: int
    baud_rate: int

    def __post_init__(self) -> None:
        check_address(self.address)
        check_uint("baud rate", self.baud_rate, 32)

    def encode(self) -> bytes:
        return bytes((self.address,)) + self.baud_rate.to_bytes(4, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        address, baud_rate = reader.u8(), reader.u32()
        reader.end()
        if address >= BROADCAST:
            raise unprocessable(f"address 0x{address:02X} is not a reader's")
        return cls(address, baud_rate)


@dataclass(frozen=True, slots=True)
class Opaque:
    """Bytes of a fixed size that another module interprets (the secure channel's)."""

    SIZE: ClassVar[int]
    data: bytes

    def __post_init__(self) -> None:
        check_size(type(self).__name__, self.data, self.SIZE)

    def encode(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) != cls.SIZE:
            raise MessageError(f"{cls.__name__} is {cls.SIZE} bytes, not {len(data)}")
        return cls(bytes(data))
