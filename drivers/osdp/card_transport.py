"""A smart card behind an OSDP reader as a `CardTransport`: APDUs through osdp_XWR in
transparent mode (mode 1), responses in osdp_XRD.

With it `drivers.piv.cardedge.PivCard` works on a card at an OSDP reader as on one in a
PC/SC reader, so a PKI-CAK challenge reaches the card: `open` switches the reader to
transparent mode, each `transmit` is one XWR 1/1 answered by XRD 1/2 (at once, or in a
later poll reply when the reader first ACKs), `close` sends XWR 1/2 (done) and puts the
reader back in normal mode. In a secure session the APDUs travel encrypted.
"""

from __future__ import annotations

import asyncio
import contextlib

from drivers.errors import PcscError
from drivers.osdp.bus import ControlPanel, OsdpError
from drivers.osdp.codes import Command, Reply
from drivers.osdp.frame import Frame
from drivers.osdp.messages import MessageError, decode_reply
from drivers.osdp.transparent import (
    NORMAL_MODE,
    TRANSPARENT_MODE,
    CardData,
    Done,
    SendApdu,
    SetMode,
)
from drivers.transport import CardTransport


class OsdpCardError(PcscError):
    """The reader did not carry the APDU (refused, no card, offline); the card's own
    errors are status words in the response, as with any transport."""


class OsdpCardTransport(CardTransport):
    """The card at ``reader`` of the PD at ``address`` on ``cp``'s bus."""

    def __init__(
        self, cp: ControlPanel, address: int, *, reader: int = 0, timeout: float = 2.0
    ) -> None:
        self.cp = cp
        self.address = address
        self.reader = reader
        self.timeout = timeout
        self._deferred: asyncio.Future[CardData] | None = None
        self._open = False
        cp.on_reply(self._poll_reply)

    async def open(self) -> None:
        """Puts the reader in transparent mode; raises OsdpCardError if it refuses."""
        await self._expect_ack(SetMode(mode=TRANSPARENT_MODE).encode(), "transparent mode")
        self._open = True

    async def transmit(self, apdu: bytes) -> bytes:
        if not self._open:
            raise OsdpCardError("the OSDP card transport is not open")
        loop = asyncio.get_running_loop()
        self._deferred = loop.create_future()
        try:
            reply = await self._command(SendApdu(reader=self.reader, apdu=apdu).encode())
            if reply.code == Reply.XRD:
                return self._card_data(reply.data).response
            if reply.code != Reply.ACK:
                raise OsdpCardError(f"the reader refused the APDU (reply 0x{reply.code:02X})")
            # The reader took the APDU and answers in a later poll.
            try:
                data = await asyncio.wait_for(self._deferred, self.timeout)
            except TimeoutError as exc:
                raise OsdpCardError("no card response from the reader in time") from exc
            return data.response
        finally:
            self._deferred = None

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(OsdpCardError):
            await self._expect_ack(Done(reader=self.reader).encode(), "done")
        with contextlib.suppress(OsdpCardError):
            await self._expect_ack(SetMode(mode=NORMAL_MODE).encode(), "normal mode")

    async def _command(self, data: bytes) -> Frame:
        try:
            return await asyncio.wait_for(
                self.cp.command(self.address, Command.XWR, data), self.timeout
            )
        except (OsdpError, TimeoutError) as exc:
            raise OsdpCardError(f"reader {self.address}: {exc or 'no reply'}") from exc

    async def _expect_ack(self, data: bytes, what: str) -> None:
        reply = await self._command(data)
        if reply.code not in (Reply.ACK, Reply.XRD):
            raise OsdpCardError(f"reader {self.address} refused {what} (0x{reply.code:02X})")

    def _card_data(self, data: bytes) -> CardData:
        try:
            message = decode_reply(Reply.XRD, data)
        except MessageError as exc:
            raise OsdpCardError(f"a malformed osdp_XRD: {exc}") from exc
        if not isinstance(message, CardData) or message.reader != self.reader:
            raise OsdpCardError(f"the reader answered {type(message).__name__}, not card data")
        return message

    def _poll_reply(self, address: int, frame: Frame) -> None:
        deferred = self._deferred
        if address != self.address or frame.code != Reply.XRD or deferred is None:
            return
        if deferred.done():
            return
        try:
            deferred.set_result(self._card_data(frame.data))
        except OsdpCardError as exc:
            deferred.set_exception(exc)
