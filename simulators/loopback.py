"""An in-process `CardTransport` straight into a `VirtualCard`, for tests without pcscd."""

from __future__ import annotations

from drivers.errors import PcscError
from drivers.transport import CardTransport
from simulators.card import VirtualCard


class LoopbackTransport(CardTransport):
    """Hands each APDU to ``card.process``; keeps the 4-byte headers sent, never the data.

    Headers only, so a test can count chained commands and GET RESPONSE rounds while PIN
    bytes in VERIFY data stay out of anything kept.
    """

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.headers: list[bytes] = []
        self._closed = False

    async def transmit(self, apdu: bytes) -> bytes:
        """Answer ``apdu`` from the card, as one response APDU."""
        if self._closed:
            raise PcscError("loopback transport is closed")
        self.headers.append(bytes(apdu[:4]))
        return self.card.process(bytes(apdu))

    async def close(self) -> None:
        """Refuse further transmits."""
        self._closed = True
