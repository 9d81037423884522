"""ISO 7816-4 APDUs: encoding, status words as typed errors, GET RESPONSE and chaining.

Errors are the ``ApduError`` branch of ``drivers.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import (
    AuthenticationBlocked,
    CardError,
    FileNotFound,
    InsNotSupported,
    MalformedResponse,
    SecurityStatusNotSatisfied,
    WrongData,
    WrongLength,
    WrongPin,
)
from drivers.transport import CardTransport

SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX = 65535
EXTENDED_MAX_LE = 65536
CHAIN_BIT = 0x10
SW_OK = 0x9000


_SW_ERRORS: dict[int, type[CardError]] = {
    0x6700: WrongLength,
    0x6982: SecurityStatusNotSatisfied,
    0x6983: AuthenticationBlocked,
    0x6A80: WrongData,
    0x6A82: FileNotFound,
    0x6D00: InsNotSupported,
}


def error_for_sw(sw: int) -> CardError:
    """The most specific error for a non-9000 status word."""
    if sw & 0xFFF0 == 0x63C0:
        return WrongPin(sw)
    return _SW_ERRORS.get(sw, CardError)(sw)


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU; ``le`` None means no response data expected, 0 is not allowed."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} must be one byte")
        if len(self.data) > EXTENDED_MAX:
            raise ValueError("data longer than 65535 bytes")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX_LE:
            raise ValueError("le must be 1..65536 or None")

    @property
    def needs_extended(self) -> bool:
        """Whether the lengths do not fit a short APDU."""
        return len(self.data) > SHORT_MAX_DATA or (self.le or 0) > SHORT_MAX_LE

    def encode(self, *, extended: bool | None = None) -> bytes:
        """Encode, short unless the lengths need extended (or ``extended`` forces it)."""
        use_extended = self.needs_extended if extended is None else extended
        if not use_extended and self.needs_extended:
            raise ValueError("lengths do not fit a short APDU")
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        lc = len(self.data)
        if not use_extended:
            body = bytes((lc,)) + self.data if lc else b""
            if self.le is not None:
                body += bytes((self.le % 256,))  # 256 encodes as 00
            return header + body
        body = b""
        if lc:
            body = b"\x00" + lc.to_bytes(2, "big") + self.data
        if self.le is not None:
            le = (self.le % 65536).to_bytes(2, "big")  # 65536 encodes as 0000
            # Without Lc the extended Le carries its own leading 00.
            body += le if lc else b"\x00" + le
        return header + body

    def with_le(self, le: int) -> Command:
        """The same command asking for ``le`` bytes."""
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le)


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU split into data and status word."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer, e.g. 0x9000."""
        return (self.sw1 << 8) | self.sw2

    def raise_for_status(self) -> Response:
        """Return self on 9000, else raise the typed error for the status word."""
        if self.sw != SW_OK:
            raise error_for_sw(self.sw)
        return self


def parse_response(raw: bytes) -> Response:
    """Split a raw response APDU; fewer than 2 bytes raises MalformedResponse."""
    if len(raw) < 2:
        raise MalformedResponse(f"response of {len(raw)} bytes has no status word")
    return Response(data=bytes(raw[:-2]), sw1=raw[-2], sw2=raw[-1])


def _chunks(command: Command) -> list[Command]:
    """Split data over 255 bytes into chained short commands (CLA bit 0x10 on all but last)."""
    pieces = [
        command.data[i : i + SHORT_MAX_DATA] for i in range(0, len(command.data), SHORT_MAX_DATA)
    ]
    chained = [
        Command(command.cla | CHAIN_BIT, command.ins, command.p1, command.p2, piece)
        for piece in pieces[:-1]
    ]
    return [
        *chained,
        Command(command.cla, command.ins, command.p1, command.p2, pieces[-1], command.le),
    ]


async def _send(transport: CardTransport, command: Command, extended: bool) -> Response:
    return parse_response(await transport.transmit(command.encode(extended=extended)))


async def exchange(
    transport: CardTransport,
    command: Command,
    *,
    extended: bool = False,
    chain_limit: int = 64,
    max_response: int = 65536,
    check: bool = True,
) -> Response:
    """Send ``command``, chaining or GET RESPONSE-looping as needed; return the whole answer.

    With ``extended`` False, data over 255 bytes goes as chained short APDUs and an Le over
    256 is capped at 256 (61xx fetches the rest). ``chain_limit`` bounds both the number of
    chained commands and GET RESPONSE rounds; ``max_response`` bounds the assembled data.
    With ``check`` (the default) a final status other than 9000 raises its typed error.
    """
    if extended:
        commands = [command]
    else:
        if command.le is not None and command.le > SHORT_MAX_LE:
            command = command.with_le(SHORT_MAX_LE)
        commands = _chunks(command) if len(command.data) > SHORT_MAX_DATA else [command]
    if len(commands) > chain_limit:
        raise ValueError(f"{len(commands)} chained commands exceed the limit of {chain_limit}")

    for part in commands[:-1]:
        response = await _send(transport, part, extended)
        if response.sw != SW_OK:
            raise error_for_sw(response.sw)
    last = commands[-1]
    response = await _send(transport, last, extended)
    if response.sw1 == 0x6C:
        # Wrong Le: the card tells the exact length; resend once with it.
        response = await _send(transport, last.with_le(response.sw2 or 256), extended)

    data = bytearray(response.data)
    rounds = 0
    while response.sw1 == 0x61:
        rounds += 1
        if rounds > chain_limit:
            raise MalformedResponse(f"more than {chain_limit} GET RESPONSE rounds")
        get_response = Command(command.cla & ~CHAIN_BIT & 0xFF, 0xC0, 0, 0, le=response.sw2 or 256)
        response = await _send(transport, get_response, False)
        if response.sw1 == 0x6C:
            response = await _send(transport, get_response.with_le(response.sw2 or 256), False)
        data += response.data
        if len(data) > max_response:
            raise MalformedResponse(f"response longer than {max_response} bytes")
    result = Response(bytes(data), response.sw1, response.sw2)
    return result.raise_for_status() if check else result
