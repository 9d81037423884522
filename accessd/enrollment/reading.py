"""What an enrollment station reads off a PIV card, and the reading itself.

The station proves the card holds the card-authentication key (a PKI-CAK challenge
signed with 9E), so a copied CHUID or certificate cannot be enrolled; with the holder's
PIN it also proves the PIV-authentication key (9A) and reads the objects behind the PIN
(facial image, fingerprints, printed information). The PIN is verified against the
reference the card's discovery object names (the Global PIN when it is primary).
Everything else is read as stored, for inspection to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessd.authn.challenges import ChallengeBook
from accessd.authn.proofs import PkiProof
from drivers.errors import FileNotFound, MalformedData
from drivers.piv import objects, tlv
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from drivers.transport import CardTransport
from policies.vocabulary import Mechanism

#: Enrollment stations ask for challenges as reader 0.
STATION = 0
OPTIONAL_SLOTS = ("9c", "9d")


#: The optional objects by the names the API and the CLI give them.
OBJECT_IDS: dict[str, bytes] = {
    "discovery": objects.DISCOVERY,
    "ccc": objects.CCC,
    "facial_image": objects.FACIAL_IMAGE,
    "fingerprints": objects.FINGERPRINTS,
    "printed_information": objects.PRINTED_INFO,
}


@dataclass(frozen=True, slots=True)
class CardReading:
    """The card's objects as read, and the proofs it gave at the station."""

    chuid: bytes  # the 53-wrapped CHUID
    certificates: dict[str, bytes]  # slot → DER; 9A and 9E at least
    proofs: tuple[PkiProof, ...] = ()
    # The other objects as GET DATA returned them inside 53 (7E for discovery), None when
    # the card has none or they were not read (the PIN-protected ones without a PIN).
    security_object: bytes | None = None
    pin_tries_left: int | None = field(default=None, compare=False)
    discovery: bytes | None = None
    ccc: bytes | None = None
    facial_image: bytes | None = None
    fingerprints: bytes | None = None
    printed_information: bytes | None = None
    #: Objects the card was asked for and answered "not found" (6A82), by object id; an
    #: object not asked for (behind a PIN not given) is not here.
    absent: frozenset[bytes] = frozenset()

    def __repr__(self) -> str:
        return f"CardReading(slots={sorted(self.certificates)}, proofs={len(self.proofs)})"

    def objects_read(self) -> dict[bytes, bytes]:
        """Object id → content for every object read: what the security object hashes."""
        found = {
            objects.CHUID: tlv.decode_one(self.chuid).value,
            objects.DISCOVERY: self.discovery,
            objects.CCC: self.ccc,
            objects.FACIAL_IMAGE: self.facial_image,
            objects.FINGERPRINTS: self.fingerprints,
            objects.PRINTED_INFO: self.printed_information,
        }
        return {k: v for k, v in found.items() if v is not None}


async def read_card(
    transport: CardTransport, challenges: ChallengeBook, *, pin: str | None = None
) -> CardReading:
    """Read the card's objects and have it answer challenges (see the module docstring).

    Raises DriverError subclasses: WrongPin (with tries left), AuthenticationBlocked,
    FileNotFound for a card without a CHUID, PcscError when the card leaves.
    """
    card = PivCard(transport)
    await card.select()
    absent: set[bytes] = set()
    discovery = await _optional(card, objects.DISCOVERY, absent)
    reference = objects.pin_reference(_discovery(discovery))
    chuid = tlv.encode(objects.CONTAINER, await card.get_data(objects.CHUID))
    ccc = await _optional(card, objects.CCC, absent)
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
    tries = await card.pin_tries_left(reference)
    behind_pin: dict[bytes, bytes | None] = {}
    if pin is not None:
        await card.verify_pin(pin, reference)
        proofs.append(await _prove(card, challenges, "9a", certificates["9a"], Mechanism.PKI_AUTH))
        for object_id in (objects.FACIAL_IMAGE, objects.FINGERPRINTS, objects.PRINTED_INFO):
            behind_pin[object_id] = await _optional(card, object_id, absent)
    return CardReading(
        chuid,
        certificates,
        tuple(proofs),
        security_object,
        tries,
        discovery=discovery,
        ccc=ccc,
        facial_image=behind_pin.get(objects.FACIAL_IMAGE),
        fingerprints=behind_pin.get(objects.FINGERPRINTS),
        printed_information=behind_pin.get(objects.PRINTED_INFO),
        absent=frozenset(absent),
    )


async def _optional(card: PivCard, object_id: bytes, absent: set[bytes]) -> bytes | None:
    """An object's content, or None when the card has none: not found (``object_id`` then
    joins ``absent``), or empty (a container the issuer left empty, as card 46 ICI_8's
    facial image: present, so its hash, if listed, stays unchecked as before)."""
    try:
        content = await card.get_data(object_id)
    except FileNotFound:
        absent.add(object_id)
        return None
    return content or None


def _discovery(content: bytes | None) -> objects.Discovery | None:
    # A discovery object that does not decode tells nothing: the application PIN then.
    if content is None:
        return None
    try:
        return objects.Discovery.decode_content(content)
    except MalformedData:
        return None


async def _prove(
    card: PivCard, challenges: ChallengeBook, slot: str, der: bytes, mechanism: Mechanism
) -> PkiProof:
    cert = x509.load_der_x509_certificate(der)
    nonce = challenges.issue(STATION).value
    signature = await sign_challenge(card, slot, cert, nonce)
    return PkiProof(mechanism, nonce, cert.public_bytes(serialization.Encoding.DER), signature)
