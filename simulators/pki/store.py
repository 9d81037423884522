"""A test PKI kept on disk, so a later process serves the same CAs, CRLs and OCSP answers.

`save_pki` writes one JSON file (mode 0600: it holds the CAs' private keys) and `load_pki`
reads it back; the cards themselves go to a credentials file
(`simulators.panel.credentials`). Used by the demo, which must serve the repository of
cards it issued on an earlier run.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simulators.pki.authority import Issued, PrivateKey, TestPki, _Hierarchy


def _issued_json(issued: Issued) -> dict[str, str]:
    key = issued.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "key": key.decode(),
        "cert": issued.cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def _issued(doc: dict[str, str]) -> Issued:
    key = cast(PrivateKey, serialization.load_pem_private_key(doc["key"].encode(), None))
    return Issued(key, x509.load_pem_x509_certificate(doc["cert"].encode()))


def _hierarchy_json(h: _Hierarchy) -> dict[str, Any]:
    return {
        "name": h.name,
        "root": _issued_json(h.root),
        "ca": _issued_json(h.ca),
        "content_signer": _issued_json(h.content_signer),
        "revoked": {str(s): [at.isoformat(), r.value] for s, (at, r) in h.revoked.items()},
    }


def _hierarchy(doc: dict[str, Any]) -> _Hierarchy:
    return _Hierarchy(
        name=doc["name"],
        root=_issued(doc["root"]),
        ca=_issued(doc["ca"]),
        content_signer=_issued(doc["content_signer"]),
        revoked={
            int(s): (datetime.fromisoformat(at), x509.ReasonFlags(r))
            for s, (at, r) in doc["revoked"].items()
        },
    )


def save_pki(pki: TestPki, path: Path) -> None:
    """Writes ``pki`` (not its cards) to ``path``, 0600."""
    doc = {
        "v": 1,
        "base_url": pki.base_url,
        "now": pki._now.isoformat(),
        "trusted": _hierarchy_json(pki._trusted),
        "other": _hierarchy_json(pki._other),
        "issued": {
            str(serial): [cert.public_bytes(serialization.Encoding.PEM).decode(), hier]
            for serial, (cert, hier) in pki._issued.items()
        },
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out)


def load_pki(path: Path) -> TestPki:
    """The PKI `save_pki` wrote; ValueError when ``path`` is not such a file."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("v") != 1:
            raise ValueError("not version 1")
        pki = TestPki(
            doc["base_url"],
            _hierarchy(doc["trusted"]),
            _hierarchy(doc["other"]),
            datetime.fromisoformat(doc["now"]),
        )
        for serial, (pem, hier) in doc["issued"].items():
            pki._issued[int(serial)] = (x509.load_pem_x509_certificate(pem.encode()), hier)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path.name}: not a saved test PKI ({type(exc).__name__})") from exc
    return pki
