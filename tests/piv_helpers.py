"""Shared by the PIV tests: the test PKI's anchors as files, base64, fingerprints."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization

from simulators.pki import CardMaterial, TestPki


def anchor_files(pki: TestPki, directory: Path) -> tuple[Path, Path]:
    """The root (trust anchor) and issuing CA as PEM files, for Settings."""
    root, ca = directory / "root.pem", directory / "ca.pem"
    root.write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    ca.write_bytes(pki.ca.cert.public_bytes(serialization.Encoding.PEM))
    return root, ca


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fingerprint(card: CardMaterial, slot: str) -> str:
    return card.certificates[slot].fingerprint(hashes.SHA256()).hex()
