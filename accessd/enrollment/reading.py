"""What an enrollment station reads off a PIV card, and the reading itself.

The station proves the card holds the card-authentication key (a PKI-CAK challenge
signed with 9E), so a copied CHUID or certificate cannot be enrolled; with the holder's
PIN it also proves the PIV-authentication key (9A). Everything else is read as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessd.authn.challenges import ChallengeBook
from accessd.authn.proofs import PkiProof
from drivers.errors import FileNotFound
from drivers.piv import objects, tlv
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from drivers.transport import CardTransport
from policies.vocabulary import Mechanism

#: Enrollment stations ask for challenges as reader 0.
STATION = 0
OPTIONAL_SLOTS = ("9c", "9d")


@dataclass(frozen=True, slots=True)
class CardReading:
    """The card's objects as read, and the proofs it gave at the station."""

    chuid: bytes  # the 53-wrapped CHUID
    certificates: dict[str, bytes]  # slot → DER; 9A and 9E at least
    proofs: tuple[PkiProof, ...] = ()
    security_object: bytes | None = None
    pin_tries_left: int | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"CardReading(slots={sorted(self.certificates)}, proofs={len(self.proofs)})"


async def read_card(
    transport: CardTransport, challenges: ChallengeBook, *, pin: str | None = None
) -> CardReading:
    """Read CHUID, certificates and security object, and have the card answer challenges.

    Raises DriverError subclasses: WrongPin (with tries left), AuthenticationBlocked,
    FileNotFound for a card without a CHUID, PcscError when the card leaves.
    """
    card = PivCard(transport)
    await card.select()
    chuid = tlv.encode(objects.CONTAINER, await card.get_data(objects.CHUID))
    certificates: dict[str, bytes] = {}
    for slot in ("9a", "9e", *OPTIONAL_SLOTS):
        try:
            certificates[slot] = await card.read_certificate_der(slot)
        except FileNotFound:
            if slot in ("9a", "9e"):
                raise
    try:
        security_object: bytes | None = await card.read_security_object()
    except FileNotFound:
        security_object = None
    proofs = [await _prove(card, challenges, "9e", certificates["9e"], Mechanism.PKI_CAK)]
    tries = await card.pin_tries_left()
    if pin is not None:
        await card.verify_pin(pin)
        proofs.append(await _prove(card, challenges, "9a", certificates["9a"], Mechanism.PKI_AUTH))
    return CardReading(chuid, certificates, tuple(proofs), security_object, tries)


async def _prove(
    card: PivCard, challenges: ChallengeBook, slot: str, der: bytes, mechanism: Mechanism
) -> PkiProof:
    cert = x509.load_der_x509_certificate(der)
    nonce = challenges.issue(STATION).value
    signature = await sign_challenge(card, slot, cert, nonce)
    return PkiProof(mechanism, nonce, cert.public_bytes(serialization.Encoding.DER), signature)
