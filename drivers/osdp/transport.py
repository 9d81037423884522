"""The byte seam under OSDP: a serial line (tty, pty or ``socket://`` URL) or a pair of
in-memory ends for tests.

`SerialLine.open` is the one place that touches pyserial: it uses pyserial-asyncio-fast,
whose transport reads the port from the event loop's selector (no thread) and measured
faster than pyserial-asyncio over a pty (docs/protocols.md). Received bytes go to the
``on_data`` listeners on the loop; pyserial's errors come out as `OsdpLineError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable

from drivers.errors import DriverError
from drivers.listeners import Listeners

DataHandler = Callable[[bytes], None]


class OsdpLineError(DriverError):
    """The serial line could not be opened or failed."""


class Line(ABC):
    """A half-duplex byte line. Writes never block; ``on_data`` gets what arrives."""

    def __init__(self) -> None:
        self._on_data: Listeners[[bytes]] = Listeners("OSDP line data")
        self._on_lost: Listeners[[Exception | None]] = Listeners("OSDP line lost")

    def on_data(self, handler: DataHandler) -> Callable[[], None]:
        """``handler(bytes)`` for what arrives; returns the function that removes it."""
        return self._on_data.add(handler)

    def on_lost(self, handler: Callable[[Exception | None], None]) -> Callable[[], None]:
        """Called once when the line closes or fails (None: closed by us)."""
        return self._on_lost.add(handler)

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class _Protocol(asyncio.Protocol):
    def __init__(self, line: SerialLine) -> None:
        self._line = line

    def data_received(self, data: bytes) -> None:
        self._line._on_data.emit(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._line._lost(exc)


class SerialLine(Line):
    """A serial port through pyserial-asyncio-fast."""

    def __init__(self) -> None:
        super().__init__()
        self._transport: asyncio.Transport | None = None
        self._closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str, baudrate: int = 115200) -> SerialLine:
        """Opens a tty path, a pty slave, or any pyserial URL (``socket://host:port``).

        Raises OsdpLineError when the port cannot be opened."""
        import serial
        import serial_asyncio_fast

        line = cls()
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _Protocol(line), url, baudrate=baudrate
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise OsdpLineError(f"cannot open serial line {url!r}: {exc}") from exc
        line._transport = transport
        return line

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise OsdpLineError("the serial line is closed")
        self._transport.write(data)

    def set_baud_rate(self, baud_rate: int) -> None:
        """Changes the port's speed (after osdp_COMSET); a socket:// line has none."""
        port = self._transport.get_extra_info("serial") if self._transport else None
        if port is not None and hasattr(port, "baudrate"):
            try:
                port.baudrate = baud_rate
            except (ValueError, OSError) as exc:
                raise OsdpLineError(f"cannot set {baud_rate} baud: {exc}") from exc

    def _lost(self, exc: Exception | None) -> None:
        self._closed.set()
        self._on_lost.emit(exc)

    async def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 1.0)


class MemoryLine(Line):
    """One end of an in-memory line; `MemoryLine.pair()` gives two joined ends. Delivery is
    on the next loop pass, as a real line's would be."""

    def __init__(self) -> None:
        super().__init__()
        self.peer: MemoryLine | None = None
        self.closed = False
        self.sent = 0

    @classmethod
    def pair(cls) -> tuple[MemoryLine, MemoryLine]:
        a, b = cls(), cls()
        a.peer, b.peer = b, a
        return a, b

    def write(self, data: bytes) -> None:
        if self.closed or self.peer is None:
            raise OsdpLineError("the line is closed")
        self.sent += len(data)
        peer = self.peer
        asyncio.get_running_loop().call_soon(peer._deliver, bytes(data))

    def _deliver(self, data: bytes) -> None:
        if not self.closed:
            self._on_data.emit(data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_lost.emit(None)
