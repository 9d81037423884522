"""A pty pair as an OSDP line: the simulator holds the master end; whatever opens the slave
path (the control panel through pyserial, or libosdp) sees a serial port."""

from __future__ import annotations

import asyncio
import os
import termios
import tty

from drivers.osdp.transport import Line, OsdpLineError


class PtyLine(Line):
    """The master side of a fresh pty pair; `slave_path` is the port to give the CP."""

    def __init__(self) -> None:
        super().__init__()
        self._master, self._slave = os.openpty()
        # Raw: no echo, no line discipline turning 0x0D into 0x0A or eating 0x03.
        tty.setraw(self._slave, termios.TCSANOW)
        tty.setraw(self._master, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.slave_path = os.ttyname(self._slave)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = bytearray()
        self.closed = False

    def start(self) -> None:
        """Starts reading on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:
            # EIO: no process holds the slave open right now (the CP closed or restarts).
            return
        if data:
            self._on_data.emit(data)

    def write(self, data: bytes) -> None:
        if self.closed:
            raise OsdpLineError("the pty is closed")
        if self._out:
            self._out += data
            return
        try:
            sent = os.write(self._master, data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise OsdpLineError(f"pty write failed: {exc}") from exc
        if sent < len(data):
            self._out += data[sent:]
            assert self._loop is not None
            self._loop.add_writer(self._master, self._writable)

    def _writable(self) -> None:
        try:
            sent = os.write(self._master, self._out)
        except BlockingIOError:
            return
        del self._out[:sent]
        if not self._out and self._loop is not None:
            self._loop.remove_writer(self._master)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        os.close(self._master)
        os.close(self._slave)
        self._on_lost.emit(None)
