"""``python -m simulators.panel.cards``: issue test-PKI cards into a credentials file.

    python -m simulators.panel.cards --count N --out cards.json --anchors DIR [--pki-url URL]

Writes the cards (keys and PINs: the file is 0600) and the PKI's root and issuing CA as
``DIR/root.pem`` and ``DIR/ca.pem`` for the service to trust; prints the cards' names,
card UUIDs and 9E certificate fingerprints as JSON (no keys, no PINs, no full FASC-Ns).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization

from simulators.panel.credentials import write_credentials
from simulators.pki import TestPki


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.panel.cards")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--anchors", type=Path, required=True)
    parser.add_argument("--pki-url", default="http://127.0.0.1:8099")
    args = parser.parse_args(argv)
    pki = TestPki.create(args.pki_url)
    cards = [pki.issue_card(name=f"Cardholder {i:04d}") for i in range(1, args.count + 1)]
    write_credentials(args.out, cards)
    args.anchors.mkdir(parents=True, exist_ok=True)
    (args.anchors / "root.pem").write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    (args.anchors / "ca.pem").write_bytes(pki.ca.cert.public_bytes(serialization.Encoding.PEM))
    summary = [
        {
            "name": c.name,
            "card_uuid": c.card_uuid,
            "fasc_n": c.fascn.redacted(),
            "cert_9e_sha256": c.certificates["9e"].fingerprint(hashes.SHA256()).hex(),
        }
        for c in cards
    ]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run())
