"""Shared by the panel tests: a snapshot builder and a self-signed card key that signs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drivers.mqtt.messages import (
    CacheEntry,
    CredSnapshot,
    OfflineDoor,
    OfflineSchedule,
    PkiProof,
    Window,
)
from drivers.panel.cache import credential_hash

SALT = b"panel-test-salt-0123456789abcdef"
ZONE = "America/New_York"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class CardKey:
    """A P-256 key and a self-signed certificate standing in for a card's 9E slot."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def new(cls, name: str = "card") -> CardKey:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def proof(self, challenge: bytes, *, sign_this: bytes | None = None) -> PkiProof:
        signature = self.key.sign(sign_this or challenge, ec.ECDSA(hashes.SHA256()))
        return PkiProof(
            mechanism="pki_cak",
            challenge=b64(challenge),
            certificate=b64(self.cert.public_bytes(serialization.Encoding.DER)),
            signature=b64(signature),
        )


def entry(
    kind: str, value: str, doors: dict[str, str], valid_until: date = date(2030, 1, 1)
) -> CacheEntry:
    return CacheEntry(h=credential_hash(SALT, kind, value), doors=doors, valid_until=valid_until)


WEEKDAYS_8_TO_18 = OfflineSchedule(
    windows=[Window(day=d, start=8 * 60, end=18 * 60) for d in range(5)],
    holidays=[date(2025, 7, 4)],
    holiday_windows=[Window(day=4, start=10 * 60, end=12 * 60)],
)


def snapshot(
    entries: list[CacheEntry],
    *,
    version: int = 1,
    doors: dict[str, OfflineDoor] | None = None,
) -> CredSnapshot:
    return CredSnapshot(
        version=version,
        salt=b64(SALT),
        timezone=ZONE,
        generated_at=datetime(2025, 3, 1, tzinfo=UTC),
        doors=doors
        or {
            "1": OfflineDoor(factors=1, offline_allowed=True),
            "2": OfflineDoor(factors=2, offline_allowed=True),
            "3": OfflineDoor(factors=0, offline_allowed=False),
        },
        schedules={"weekdays": WEEKDAYS_8_TO_18},
        entries=entries,
    )
