"""What a card read over OSDP (osdp_RAW: a bit count and the bits) identifies.

- 128 bits: a PIV card's UUID (the CHUID's GUID), as a reader configured for PIV sends it;
- 200 bits: a PIV FASC-N, sent as its 25 bytes;
- a Wiegand format with valid parity (26-bit H10301, 37-bit H10304, …): a badge number,
  ``badge_format`` filled with its facility code and card number.

Anything else is unreadable (None) rather than guessed.
"""

from __future__ import annotations

import uuid

from drivers.mqtt.messages import CredentialRef
from drivers.osdp import wiegand


def credential_of(bits: int, data: bytes, badge_format: str) -> CredentialRef | None:
    if len(data) * 8 < bits:
        return None
    if bits == 128:
        return CredentialRef(kind="card_uuid", value=str(uuid.UUID(bytes=data[:16])))
    if bits == 200:
        return CredentialRef(kind="fasc_n", value=data[:25].hex())
    card = wiegand.decode(bits, data)
    if card is None:
        return None
    value = badge_format.format(facility=card.facility, number=card.number)
    return CredentialRef(kind="badge_number", value=value)
