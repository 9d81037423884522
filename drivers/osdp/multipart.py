"""The OSDP 2.2 multi-part message format: one message carried in several packets.

Each packet's DATA is a 6-byte header and a fragment of the whole message::

    MpSizeTotal (2, LE) | MpOffset (2, LE) | MpFragmentSize (2, LE) | fragment

osdp_PIVDATAR, osdp_GENAUTH, osdp_GENAUTHR, osdp_CRAUTH and osdp_CRAUTHR carry it
(`drivers.osdp.piv_messages`). The header layout is that of bytedreamer/OSDP.Net
(Model/ReplyData/DataFragmentResponse.cs, Model/CommandData/MessageDataFragment.cs:
three 16-bit fields, as the PIV data reply is parsed there).

`split` cuts a message into fragments that fit a packet; `Reassembler` puts them back
together and accepts only the next fragment in order: a gap, an overlap, a change of total
size or more than the agreed maximum is a `MessageError`, and the partial message is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from drivers.osdp.codec import MessageError, Reader, check_uint, redacted, unprocessable

HEADER = 6
#: MpSizeTotal is 16 bits.
MAX_MESSAGE = 0xFFFF


@dataclass(frozen=True, slots=True)
class Fragment:
    """One part of a multi-part message: ``data`` goes at ``offset`` of ``total_size``."""

    total_size: int
    offset: int
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_uint("total size", self.total_size, 16)
        check_uint("offset", self.offset, 16)
        if self.offset + len(self.data) > self.total_size:
            raise ValueError(
                f"{len(self.data)} bytes at offset {self.offset} overrun {self.total_size}"
            )

    def __repr__(self) -> str:
        return (
            f"Fragment(total_size={self.total_size}, offset={self.offset}, "
            f"data={redacted(self.data)})"
        )

    @property
    def last(self) -> bool:
        """Whether this fragment ends the message."""
        return self.offset + len(self.data) == self.total_size

    def encode(self) -> bytes:
        sizes = (self.total_size, self.offset, len(self.data))
        return b"".join(n.to_bytes(2, "little") for n in sizes) + self.data

    @classmethod
    def decode(cls, data: bytes) -> Self:
        reader = Reader(data, "multi-part fragment")
        total, offset, size = reader.u16(), reader.u16(), reader.u16()
        chunk = reader.take(size)
        reader.end()
        if offset + size > total:
            raise unprocessable(f"{size} bytes at offset {offset} overrun the {total}-byte message")
        return cls(total, offset, chunk)


def split(message: bytes, max_size: int) -> list[Fragment]:
    """``message`` in order, each fragment's encoding (header included) at most ``max_size``
    bytes: the space for DATA in a packet the receiver accepts. An empty message is one
    empty fragment."""
    if len(message) > MAX_MESSAGE:
        raise ValueError(f"a multi-part message is at most {MAX_MESSAGE} bytes")
    room = max_size - HEADER
    if room < 1:
        raise ValueError(f"a fragment of {max_size} bytes has no room after its header")
    total = len(message)
    if not total:
        return [Fragment(0, 0, b"")]
    return [Fragment(total, at, message[at : at + room]) for at in range(0, total, room)]


class Reassembler:
    """Joins the fragments of one message at a time, strictly in order."""

    def __init__(self, max_size: int = MAX_MESSAGE) -> None:
        self._max = max_size
        self._total: int | None = None
        self._parts: list[bytes] = []
        self._received = 0

    @property
    def in_progress(self) -> bool:
        """Whether a message has begun and not yet ended."""
        return self._total is not None

    @property
    def received(self) -> int:
        return self._received

    def reset(self) -> None:
        """Drops a partial message (an abort, a timeout, a new exchange)."""
        self._total = None
        self._parts = []
        self._received = 0

    def add(self, fragment: Fragment) -> bytes | None:
        """The whole message once ``fragment`` completes it, else None."""
        try:
            self._check(fragment)
        except MessageError:
            self.reset()
            raise
        self._total = fragment.total_size
        self._parts.append(fragment.data)
        self._received += len(fragment.data)
        if self._received < fragment.total_size:
            return None
        message = b"".join(self._parts)
        self.reset()
        return message

    def _check(self, fragment: Fragment) -> None:
        if fragment.total_size > self._max:
            raise unprocessable(
                f"a {fragment.total_size}-byte message is over the {self._max} agreed"
            )
        if self._total is not None and fragment.total_size != self._total:
            raise unprocessable(
                f"total size changed from {self._total} to {fragment.total_size} mid-message"
            )
        if fragment.offset > self._received:
            raise unprocessable(f"gap: fragment at {fragment.offset}, {self._received} received")
        if fragment.offset < self._received:
            raise unprocessable(
                f"overlap: fragment at {fragment.offset}, {self._received} already received"
            )
        if not fragment.data and fragment.total_size:
            raise unprocessable("an empty fragment of a message that is not empty")
