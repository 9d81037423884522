"""What a panel reads from a PIV card at one of its readers, over any card transport
(in-process, PC/SC, or an OSDP reader in transparent mode): the CHUID's identifiers and a
PKI-CAK proof, or PKI-AUTH when the card accepts a PIN.

PKI-CAK: read the 9E certificate, have the card sign a challenge (accessd's from the
panel's pool, or the panel's own when it has none), read the CHUID for the identifiers.
With a PIN (a card-and-PIN door) it verifies the PIN on the card and signs with 9a
(PKI-AUTH) instead. The PIN goes to the card only, never into the presentation or a log.
"""

from __future__ import annotations

import base64
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization

from drivers.errors import CardError
from drivers.mqtt.messages import CredentialRef, Mechanism, PkiProof
from drivers.panel.session import PanelSession, Presentation
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from drivers.transport import CardTransport


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def read_piv(
    session: PanelSession, reader: int, transport: CardTransport, *, pin: str | None = None
) -> Presentation:
    """The presentation of the card behind ``transport`` at ``reader``; a PIN the card
    refuses leaves ``pin_verified`` False and falls back to PKI-CAK."""
    piv = PivCard(transport)
    await piv.select()
    chuid = await piv.read_chuid()
    identifiers = (
        CredentialRef(kind="card_uuid", value=chuid.card_uuid),
        CredentialRef(kind="fasc_n", value=chuid.fascn.hex()),
    )
    pin_verified = False
    if pin is not None:
        try:
            await piv.verify_pin(pin)
            pin_verified = True
        except CardError:
            pin_verified = False
    slot = "9a" if pin_verified else "9e"
    mechanism: Literal["pki_cak", "pki_auth"] = "pki_auth" if pin_verified else "pki_cak"
    cert = await piv.read_certificate(slot)
    challenge, from_accessd = session.take_challenge(reader)
    signature = await sign_challenge(piv, slot, cert, challenge)
    proof = PkiProof(
        mechanism=mechanism,
        challenge=_b64(challenge),
        certificate=_b64(cert.public_bytes(serialization.Encoding.DER)),
        signature=_b64(signature),
    )
    evidence: tuple[Mechanism, ...] = (mechanism, "pin") if pin_verified else (mechanism,)
    return Presentation(
        reader=reader,
        credential=CredentialRef(kind="cert_sha256", value=cert.fingerprint(hashes.SHA256()).hex()),
        evidence=evidence,
        proof=proof,
        pin_verified=pin_verified,
        identifiers=identifiers,
        local_challenge=not from_accessd,
    )
