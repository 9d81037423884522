"""A simulated door reader that reads its virtual PIV card through the real PC/SC stack.

The card goes into a vsmartcard vpcd slot (so pcscd sees a card in a reader), the reader
connects to it through pyscard like a real contact reader on a panel would, and reads it
with the same code as the in-process reader (`simulators.panel.reader.read_card`).
"""

from __future__ import annotations

import asyncio

from drivers.errors import PcscError
from drivers.panel.session import PanelSession, Presentation
from simulators.panel.reader import read_card
from simulators.piv_card import PivReaderSlot, VirtualPivCard

#: pcscd powers a fresh card on, then off again at its first presence check (~0.4 s); a
#: client connected inside that window has the card reset under it.
SETTLE_SECONDS = 0.5
CONNECT_SECONDS = 10.0


async def read_card_over_pcsc(
    session: PanelSession,
    reader: int,
    card: VirtualPivCard,
    *,
    vpcd_port: int,
    reader_name: str,
    pin: str | None = None,
) -> Presentation:
    """Insert ``card`` into the vpcd slot on ``vpcd_port``, read it through pcscd at
    ``reader_name`` (exclusively, so no other client's APDU lands between ours), remove it."""
    from drivers.pcsc import PcscTransport  # pyscard is an optional dependency

    async with PivReaderSlot(vpcd_port, card):
        await asyncio.sleep(SETTLE_SECONDS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_SECONDS
        while True:
            try:
                transport = await PcscTransport.connect(reader_name, exclusive=True)
                break
            except PcscError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)
        async with transport:
            return await read_card(session, reader, card, pin=pin, transport=transport)
