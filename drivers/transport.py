"""The byte seam under the APDU layer: one command APDU in, one raw response APDU out."""

from __future__ import annotations

from abc import ABC, abstractmethod


class CardTransport(ABC):
    """Carries raw APDUs to one card; the pyscard and loopback transports implement it."""

    @abstractmethod
    async def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the raw response including SW1 SW2."""

    @abstractmethod
    async def close(self) -> None:
        """Release the card; further transmits are an error."""
