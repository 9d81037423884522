"""OSDP packets: building one, and cutting a byte stream into them.

A packet on the wire (SIA OSDP 2.2, section 5.7)::

    [FF] 53 | ADDR | LEN_LSB LEN_MSB | CTRL | [SCB] | CODE | DATA | [MAC, 4] | CRC LE / CKSUM

``LEN`` counts from SOM to the end of the check; ``ADDR`` bit 7 marks a reply; ``CTRL`` bits
0-1 are the sequence number, bit 2 chooses the 16-bit CRC over the 8-bit checksum, bit 3
says a security control block follows. The CRC is CRC-16/AUG-CCITT (polynomial 0x1021,
initial 0x1D0F, no reflection), sent least significant byte first. The leading 0xFF mark is
optional on receipt and sent by default (2.2 asks for it).

`FrameDecoder` never raises on bad input: a CRC or checksum error, a length out of range or
bytes outside any packet are counted, the decoder moves one byte past the start of the bad
packet and looks for the next SOM, so one broken frame costs that frame only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from drivers.osdp.codes import SecurityBlock

MARK = 0xFF
SOM = 0x53
REPLY_BIT = 0x80
BROADCAST = 0x7F
CTRL_SQN = 0x03
CTRL_CRC = 0x04
CTRL_SCB = 0x08
HEADER = 5  # SOM, ADDR, LEN (2), CTRL
MAC_SIZE = 4
#: Upper bound of a packet we accept; a PD's receive buffer is at least 128 bytes, and
#: ACURXSIZE may raise the CP's. Longer declared lengths are treated as garbage.
MAX_PACKET = 1440
_MAC_TYPES = frozenset(
    {SecurityBlock.SCS_15, SecurityBlock.SCS_16, SecurityBlock.SCS_17, SecurityBlock.SCS_18}
)


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0x1D0F) -> int:
    """CRC-16/AUG-CCITT of ``data`` (check value of b"123456789": 0xE5CC)."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The 8-bit checksum: the two's complement of the byte sum."""
    return (-sum(data)) & 0xFF


@dataclass(frozen=True, slots=True)
class Frame:
    """One packet. ``scb`` is the whole security control block (its length byte, type and
    data) or None; ``mac`` the 4 MAC bytes, present exactly when the block type is
    SCS_15..18. ``data`` is as on the wire (still encrypted under SCS_17/18)."""

    address: int
    code: int
    #: Kept out of the repr: it may be a key (osdp_KEYSET), a random or plaintext.
    data: bytes = field(default=b"", repr=False)
    sequence: int = 0
    reply: bool = False
    use_crc: bool = True
    scb: bytes | None = None
    mac: bytes | None = None
    #: The received bytes from SOM to the end of the data (what a MAC covers); empty on
    #: frames built here.
    raw: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.address <= BROADCAST:
            raise ValueError(f"address {self.address} out of 0..0x7F")
        if not 0 <= self.sequence <= 3:
            raise ValueError(f"sequence {self.sequence} out of 0..3")
        if not 0 <= self.code <= 0xFF:
            raise ValueError(f"code {self.code} out of a byte")
        if self.scb is not None and (len(self.scb) < 2 or self.scb[0] != len(self.scb)):
            raise ValueError("a security block starts with its own length (at least 2)")
        wants_mac = self.scb is not None and self.scb[1] in _MAC_TYPES
        if wants_mac != (self.mac is not None) or (self.mac and len(self.mac) != MAC_SIZE):
            raise ValueError("a MAC of 4 bytes comes with, and only with, SCS_15..18")

    @property
    def security_type(self) -> int | None:
        return self.scb[1] if self.scb is not None else None

    def header_and_body(self) -> bytes:
        """The bytes from SOM to the end of the data, as sent: what the MAC covers."""
        size = (
            HEADER
            + (len(self.scb) if self.scb else 0)
            + 1
            + len(self.data)
            + (MAC_SIZE if self.mac else 0)
            + (2 if self.use_crc else 1)
        )
        ctrl = self.sequence | (CTRL_CRC if self.use_crc else 0) | (CTRL_SCB if self.scb else 0)
        addr = self.address | (REPLY_BIT if self.reply else 0)
        return b"".join(
            (
                bytes((SOM, addr, size & 0xFF, size >> 8, ctrl)),
                self.scb or b"",
                bytes((self.code,)),
                self.data,
            )
        )


def encode(frame: Frame, *, mark: bool = True) -> bytes:
    """The packet's bytes, with the check appended (and the 0xFF mark before it)."""
    body = frame.header_and_body() + (frame.mac or b"")
    if len(body) + (2 if frame.use_crc else 1) > MAX_PACKET:
        raise ValueError(f"a packet of {len(body)} bytes is over {MAX_PACKET}")
    if frame.use_crc:
        crc = crc16(body)
        tail = bytes((crc & 0xFF, crc >> 8))
    else:
        tail = bytes((checksum(body),))
    return (b"\xff" if mark else b"") + body + tail


@dataclass(slots=True)
class DecoderStats:
    """What the decoder threw away, by cause."""

    frames: int = 0
    bad_check: int = 0
    bad_length: int = 0
    bad_security_block: int = 0
    #: Bytes outside any packet (not counting 0xFF marks).
    garbage: int = 0


class FrameDecoder:
    """Cuts a byte stream into `Frame`s; see the module docstring for what it rejects."""

    def __init__(self, *, max_packet: int = MAX_PACKET) -> None:
        self._buf = bytearray()
        self._max = max_packet
        self.stats = DecoderStats()

    def reset(self) -> None:
        """Drops a partial packet (after a timeout: the rest will not come)."""
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held for a packet not complete yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Every packet completed by ``data``, in order."""
        self._buf += data
        return list(self._frames())

    def _frames(self) -> Iterator[Frame]:
        buf = self._buf
        stats = self.stats
        while buf:
            start = buf.find(SOM)
            if start < 0:
                stats.garbage += sum(1 for b in buf if b != MARK)
                buf.clear()
                return
            if start:
                stats.garbage += sum(1 for b in buf[:start] if b != MARK)
                del buf[:start]
            if len(buf) < HEADER:
                return
            size = buf[2] | (buf[3] << 8)
            ctrl = buf[4]
            check = 2 if ctrl & CTRL_CRC else 1
            if size < HEADER + 1 + check or size > self._max:
                stats.bad_length += 1
                del buf[:1]
                continue
            if len(buf) < size:
                return
            packet = bytes(buf[:size])
            frame = self._parse(packet, ctrl, check)
            if frame is None:
                del buf[:1]  # a SOM inside the bad packet may start the real one
                continue
            del buf[:size]
            stats.frames += 1
            yield frame

    def _parse(self, packet: bytes, ctrl: int, check: int) -> Frame | None:
        body, tail = packet[:-check], packet[-check:]
        expected = tail[0] | (tail[1] << 8) if check == 2 else tail[0]
        if (crc16(body) if check == 2 else checksum(body)) != expected:
            self.stats.bad_check += 1
            return None
        pos = HEADER
        scb = None
        if ctrl & CTRL_SCB:
            length = body[pos] if pos < len(body) else 0
            if length < 2 or pos + length >= len(body):
                self.stats.bad_security_block += 1
                return None
            scb = body[pos : pos + length]
            pos += length
        mac = None
        end = len(body)
        if scb is not None and scb[1] in _MAC_TYPES:
            if end - MAC_SIZE <= pos:
                self.stats.bad_security_block += 1
                return None
            mac = body[end - MAC_SIZE :]
            end -= MAC_SIZE
        if pos >= end:
            self.stats.bad_length += 1  # no command or reply code
            return None
        addr = body[1]
        return Frame(
            address=addr & 0x7F,
            reply=bool(addr & REPLY_BIT),
            sequence=ctrl & CTRL_SQN,
            use_crc=check == 2,
            scb=scb,
            code=body[pos],
            data=body[pos + 1 : end],
            mac=mac,
            raw=body[:end],
        )
