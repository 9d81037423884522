"""The credentials file the panel simulator reads: the test PKI's cards, keys included.

JSON, ``{"v": 1, "cards": [card, ...]}``; a card is `CardMaterial` field by field: ``name``,
``fasc_n`` (50 lowercase hex digits), ``card_uuid``, ``expires`` (ISO date), ``pin``,
``puk``, ``keys`` and ``certificates`` (slot name → PEM: PKCS#8 keys, X.509 certificates),
``chuid`` and ``security_object`` (base64), ``variant``. It holds private keys and PINs of
test cards: it is written 0600 and never logged.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import date
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from drivers.piv.fascn import Fascn
from simulators.pki import CardMaterial, PrivateKey
from simulators.pki.authority import Variant


def card_to_json(card: CardMaterial) -> dict[str, Any]:
    return {
        "name": card.name,
        "fasc_n": card.fascn.hex(),
        "card_uuid": card.card_uuid,
        "expires": card.expires.isoformat(),
        "pin": card.pin,
        "puk": card.puk,
        "keys": {
            slot: key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            for slot, key in card.keys.items()
        },
        "certificates": {
            slot: cert.public_bytes(serialization.Encoding.PEM).decode()
            for slot, cert in card.certificates.items()
        },
        "chuid": base64.b64encode(card.chuid).decode(),
        "security_object": base64.b64encode(card.security_object).decode(),
        "variant": card.variant,
    }


def card_from_json(doc: dict[str, Any]) -> CardMaterial:
    keys: dict[str, PrivateKey] = {}
    for slot, pem in doc["keys"].items():
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        keys[slot] = cast(PrivateKey, key)
    return CardMaterial(
        name=doc["name"],
        fascn=Fascn.from_hex(doc["fasc_n"]),
        card_uuid=doc["card_uuid"],
        expires=date.fromisoformat(doc["expires"]),
        pin=doc["pin"],
        puk=doc["puk"],
        keys=keys,
        certificates={
            slot: x509.load_pem_x509_certificate(pem.encode())
            for slot, pem in doc["certificates"].items()
        },
        chuid=base64.b64decode(doc["chuid"]),
        security_object=base64.b64decode(doc["security_object"]),
        variant=cast(Variant, doc.get("variant", "good")),
    )


def write_credentials(path: Path, cards: list[CardMaterial]) -> None:
    text = json.dumps({"v": 1, "cards": [card_to_json(c) for c in cards]}, indent=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def read_credentials(path: Path) -> list[CardMaterial]:
    """The cards of a credentials file; ValueError names what is wrong (never a secret)."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("v") != 1:
            raise ValueError("not version 1")
        return [card_from_json(c) for c in doc["cards"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: not a credentials file ({type(exc).__name__})") from exc
