"""The card side of vsmartcard's vpcd protocol: a virtual card in a pcscd reader slot.

vpcd listens on TCP; the card connects. Each frame is a 2-byte big-endian length and a
payload. A 1-byte payload is a control byte (only GET ATR is answered); longer payloads are
command APDUs answered with one response APDU. Connecting inserts the card, closing removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from simulators.card import VirtualCard

log = logging.getLogger(__name__)

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_GET_ATR = 0x04
MAX_FRAME = 4096  # our cards never take more; a longer frame is garbage


def _tune(sock: socket.socket) -> None:
    # vpcd writes length and payload separately; with Nagle and delayed ACKs each APDU
    # stalls ~44 ms. NODELAY on our side and QUICKACK re-armed before each read fix it.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _quickack(sock)


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


class VirtualReaderSlot:
    """One vpcd reader slot: ``insert()`` connects the card, ``remove()`` disconnects it."""

    def __init__(
        self,
        port: int,
        card: VirtualCard,
        host: str = "127.0.0.1",
        quickack: bool = True,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.port = port
        self.host = host
        self.card = card
        self.quickack = quickack
        self.max_frame = max_frame
        self.dropped_frames = 0
        self.apdus = 0
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def inserted(self) -> bool:
        """Whether the card is connected to vpcd."""
        return self._task is not None and not self._task.done()

    async def insert(self) -> None:
        """Connect to vpcd, which makes pcscd see a card in this reader."""
        if self.inserted:
            return
        reader, writer = await asyncio.open_connection(self.host, self.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            if self.quickack:
                _tune(sock)
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        self._task = asyncio.create_task(self._serve(reader, writer, sock))

    async def remove(self) -> None:
        """Disconnect, which makes pcscd see the card removed."""
        task, writer = self._task, self._writer
        self._task = self._writer = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> VirtualReaderSlot:
        await self.insert()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.remove()

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sock: socket.socket | None,
    ) -> None:
        try:
            while True:
                if sock is not None and self.quickack:
                    _quickack(sock)
                header = await reader.readexactly(2)
                length = int.from_bytes(header, "big")
                if length > self.max_frame:
                    # Cannot resync inside an oversized frame, so skip exactly its bytes.
                    self.dropped_frames += 1
                    await reader.readexactly(length)
                    continue
                payload = await reader.readexactly(length)
                answer = self._answer(payload)
                if answer is not None:
                    writer.write(len(answer).to_bytes(2, "big") + answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            log.debug("vpcd on port %d closed the connection", self.port)
        finally:
            writer.close()

    def _answer(self, payload: bytes) -> bytes | None:
        if len(payload) == 0:
            self.dropped_frames += 1
            return None
        if len(payload) == 1:
            if payload[0] == CTRL_GET_ATR:
                return self.card.atr
            if payload[0] not in (CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET):
                self.dropped_frames += 1
            return None
        if len(payload) < 4:
            self.dropped_frames += 1
            return None
        self.apdus += 1
        try:
            return self.card.process(payload)
        except Exception:
            # A faulty card model must not take the slot down; answer "no precise diagnosis".
            log.exception("virtual card failed on an APDU")
            return b"\x6f\x00"
