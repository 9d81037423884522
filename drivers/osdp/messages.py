"""OSDP 2.2 payloads: decode any command or reply by its code.

The DATA field of a packet (`drivers.osdp.frame.Frame.data`) decodes to a frozen dataclass
with ``encode() -> bytes`` and a ``decode(data)`` classmethod:

    drivers.osdp.commands      POLL, ID, CAP, LSTAT..RSTAT, OUT, LED, BUZ, TEXT, COMSET,
                               KEYSET, CHLNG, SCRYPT, ACURXSIZE, KEEPACTIVE, ABORT, MFG
    drivers.osdp.replies       ACK, NAK, PDID, PDCAP, LSTATR..RSTATR, RAW, FMT, KEYPAD, COM,
                               BUSY, MFGREP, CCRYPT, RMAC_I
    drivers.osdp.piv_messages  PIVDATA, GENAUTH, CRAUTH and their replies (multi-part)
    drivers.osdp.transparent   XWR and XRD: mode setting, transparent smart-card mode
    drivers.osdp.multipart     the multi-part fragment, `split` and `Reassembler`

`decode_command` and `decode_reply` take any code and any bytes and return a message or
raise `MessageError`, whose ``reason`` is the NAK a PD would answer with: UNKNOWN_COMMAND
for a code without a codec here (BIOREAD, BIOMATCH, FILETRANSFER and their replies,
MFGSTATR, MFGERRR), BAD_LENGTH or UNABLE_TO_PROCESS for bad data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drivers.osdp import commands, piv_messages, replies, transparent
from drivers.osdp.codec import CommandMessage, Message, MessageError, ReplyMessage
from drivers.osdp.codes import Command, NakReason, Reply

__all__ = [
    "CommandMessage",
    "Message",
    "MessageError",
    "ReplyMessage",
    "decode_command",
    "decode_reply",
]

_COMMANDS: dict[int, Callable[[bytes], CommandMessage]] = {
    cls.code: cls.decode
    for cls in (
        commands.Poll,
        commands.IdRequest,
        commands.CapabilitiesRequest,
        commands.LocalStatusRequest,
        commands.InputStatusRequest,
        commands.OutputStatusRequest,
        commands.ReaderStatusRequest,
        commands.OutputControl,
        commands.LedControl,
        commands.BuzzerControl,
        commands.TextOutput,
        commands.CommunicationSet,
        commands.KeySet,
        commands.Challenge,
        commands.ServerCryptogram,
        commands.AcuReceiveSize,
        commands.ManufacturerCommand,
        commands.KeepActive,
        commands.Abort,
        piv_messages.PivDataRequest,
        piv_messages.GeneralAuthenticate,
        piv_messages.ChallengeResponseAuthenticate,
    )
}
_COMMANDS[Command.XWR] = transparent.decode_extended_write

_REPLIES: dict[int, Callable[[bytes], ReplyMessage]] = {
    cls.code: cls.decode
    for cls in (
        replies.Ack,
        replies.Nak,
        replies.PdId,
        replies.PdCapabilities,
        replies.LocalStatus,
        replies.InputStatus,
        replies.OutputStatus,
        replies.ReaderStatus,
        replies.RawCardData,
        replies.FormattedCardData,
        replies.KeypadData,
        replies.CommunicationConfiguration,
        replies.Busy,
        replies.ManufacturerReply,
        replies.ClientCryptogram,
        replies.InitialRmac,
        piv_messages.PivDataReply,
        piv_messages.GeneralAuthenticateReply,
        piv_messages.ChallengeResponseReply,
    )
}
_REPLIES[Reply.XRD] = transparent.decode_extended_read

M = TypeVar("M", CommandMessage, ReplyMessage)


def _dispatch(table: dict[int, Callable[[bytes], M]], code: int, data: bytes, kind: str) -> M:
    decoder = table.get(code)
    if decoder is None:
        raise MessageError(f"no codec for {kind} 0x{code:02X}", NakReason.UNKNOWN_COMMAND, code)
    try:
        return decoder(bytes(data))
    except MessageError as exc:
        exc.code = code
        raise


def decode_command(code: int, data: bytes) -> CommandMessage:
    """The typed command a packet with ``code`` and DATA ``data`` carries.

    Raises `MessageError` and nothing else, whatever the input.
    """
    return _dispatch(_COMMANDS, code, data, "command")


def decode_reply(code: int, data: bytes) -> ReplyMessage:
    """The typed reply a packet with ``code`` and DATA ``data`` carries; raises
    `MessageError` and nothing else, whatever the input."""
    return _dispatch(_REPLIES, code, data, "reply")
