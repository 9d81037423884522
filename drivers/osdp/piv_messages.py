"""The OSDP 2.2 PIV exchange: osdp_PIVDATA, osdp_GENAUTH, osdp_CRAUTH and their replies.

osdp_PIVDATA (0xA3) asks the reader for a PIV data object (its 3-byte tag, an element
within it, an offset: bytedreamer/OSDP.Net Model/CommandData/GetPIVData.cs, the 6-byte
form; the 5-byte form with a 1-byte offset predates 2.2 and is refused here). Everything
else travels as `drivers.osdp.multipart` fragments: osdp_PIVDATAR (0x80) the object,
osdp_GENAUTH (0xA4) and osdp_CRAUTH (0xA5) an `AuthenticationRequest` (algorithm, key
reference, then the challenge or template: OSDP.Net ControlPanel.AuthenticationChallenge
sends ``[algorithm, key] + challenge`` fragmented whole), osdp_GENAUTHR (0x81) and
osdp_CRAUTHR (0x82) the card's answer. Fragments never show their data in a repr: a
CHUID carries the full FASC-N.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from drivers.osdp.codec import (
    CommandMessage,
    Reader,
    ReplyMessage,
    check_size,
    check_uint,
)
from drivers.osdp.codes import Command, Reply
from drivers.osdp.multipart import Fragment, split

#: PIV data object tags (SP 800-73-4 part 1, table 3) most asked for over OSDP.
CHUID = bytes.fromhex("5FC102")
CARD_AUTHENTICATION_CERTIFICATE = bytes.fromhex("5FC101")
PIV_AUTHENTICATION_CERTIFICATE = bytes.fromhex("5FC105")


class PivAlgorithm(IntEnum):
    """Algorithm identifiers of GENERAL AUTHENTICATE (SP 800-78-4 table 6-2)."""

    RSA_1024 = 0x06
    RSA_2048 = 0x07
    ECC_P256 = 0x11
    ECC_P384 = 0x14


class PivKeyReference(IntEnum):
    """Key references (SP 800-73-4 part 1, table 4b)."""

    PIV_AUTHENTICATION = 0x9A
    CARD_AUTHENTICATION = 0x9E


@dataclass(frozen=True, slots=True)
class PivDataRequest(CommandMessage):
    """osdp_PIVDATA: object tag (3 bytes), element id, offset (16-bit) into the object."""

    code: ClassVar[Command] = Command.PIVDATA
    object_id: bytes
    element_id: int = 0
    offset: int = 0

    def __post_init__(self) -> None:
        check_size("object id", self.object_id, 3)
        check_uint("element id", self.element_id, 8)
        check_uint("offset", self.offset, 16)

    def encode(self) -> bytes:
        return self.object_id + bytes((self.element_id,)) + self.offset.to_bytes(2, "little")

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        message = cls(reader.take(3), reader.u8(), reader.u16())
        reader.end()
        return message


@dataclass(frozen=True, slots=True)
class AuthenticationRequest:
    """The whole osdp_GENAUTH or osdp_CRAUTH message, before fragmenting: the algorithm
    and key reference the card is to use, then the challenge (CRAUTH) or the data for the
    card's GENERAL AUTHENTICATE (GENAUTH)."""

    algorithm: int
    key_reference: int
    data: bytes

    def __post_init__(self) -> None:
        check_uint("algorithm", self.algorithm, 8)
        check_uint("key reference", self.key_reference, 8)

    def encode(self) -> bytes:
        return bytes((self.algorithm, self.key_reference)) + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, cls.__name__)
        return cls(reader.u8(), reader.u8(), reader.rest())


@dataclass(frozen=True, slots=True)
class _FragmentMessage:
    """A message whose DATA is one multi-part fragment."""

    fragment: Fragment

    def encode(self) -> bytes:
        return self.fragment.encode()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        return cls(Fragment.decode(data))

    @classmethod
    def fragments(cls, message: bytes, max_size: int) -> list[Self]:
        """``message`` as messages of this kind whose DATA is at most ``max_size`` bytes."""
        return [cls(fragment) for fragment in split(message, max_size)]


@dataclass(frozen=True, slots=True)
class GeneralAuthenticate(_FragmentMessage, CommandMessage):
    """osdp_GENAUTH: a fragment of an `AuthenticationRequest`."""

    code: ClassVar[Command] = Command.GENAUTH


@dataclass(frozen=True, slots=True)
class ChallengeResponseAuthenticate(_FragmentMessage, CommandMessage):
    """osdp_CRAUTH: a fragment of an `AuthenticationRequest` whose data is the challenge
    for the card's key (the Card Authentication key, 9E, for PKI-CAK)."""

    code: ClassVar[Command] = Command.CRAUTH


@dataclass(frozen=True, slots=True)
class PivDataReply(_FragmentMessage, ReplyMessage):
    """osdp_PIVDATAR: a fragment of the PIV data object asked for."""

    code: ClassVar[Reply] = Reply.PIVDATAR


@dataclass(frozen=True, slots=True)
class GeneralAuthenticateReply(_FragmentMessage, ReplyMessage):
    """osdp_GENAUTHR: a fragment of the card's GENERAL AUTHENTICATE answer."""

    code: ClassVar[Reply] = Reply.GENAUTHR


@dataclass(frozen=True, slots=True)
class ChallengeResponseReply(_FragmentMessage, ReplyMessage):
    """osdp_CRAUTHR: a fragment of the card's response (signature) to the challenge."""

    code: ClassVar[Reply] = Reply.CRAUTHR
