"""A PIV reader at a simulated door: reads a virtual card over the loopback transport
(or another one) with `drivers.panel.piv_read.read_piv`, the code real readers use."""

from __future__ import annotations

from drivers.panel.piv_read import read_piv
from drivers.panel.session import PanelSession, Presentation
from drivers.transport import CardTransport
from simulators.loopback import LoopbackTransport
from simulators.piv_card import VirtualPivCard


async def read_card(
    session: PanelSession,
    reader: int,
    card: VirtualPivCard,
    *,
    pin: str | None = None,
    transport: CardTransport | None = None,
) -> Presentation:
    """What the reader gets from ``card``; ``transport`` reads it another way than
    in-process (through PC/SC: `simulators.panel.pcsc_reader`)."""
    if transport is None:
        card.reset()  # a card coming into the field is powered up afresh
        transport = LoopbackTransport(card)
    return await read_piv(session, reader, transport, pin=pin)
