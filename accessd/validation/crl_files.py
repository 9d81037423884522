"""CRL files in the directory the revocation store watches (`crl_directory`).

Sites with no network path to the CAs carry CRLs in by hand; `import_crl` puts one where
the store reads it, under a name of its issuer and the issuer's key (two CAs may share a
name), replacing the CRL held for that issuer only with a newer one: a CRL carried in late
must not roll revocations back.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessd.validation.revocation import crl_der

Outcome = Literal["imported", "replaced", "unchanged", "older"]


@dataclass(frozen=True, slots=True)
class Imported:
    """What became of one CRL file."""

    source: Path
    stored: Path
    outcome: Outcome
    issuer: str
    revoked: int


def _load(data: bytes, source: Path) -> x509.CertificateRevocationList:
    try:
        return x509.load_der_x509_crl(crl_der(data))
    except ValueError as exc:
        raise ValueError(f"{source}: not a DER or PEM CRL") from exc


def stored_name(crl: x509.CertificateRevocationList) -> str:
    """The file name a CRL is kept under: one file per issuing CA (name and key)."""
    issuer = hashlib.sha256(crl.issuer.public_bytes()).hexdigest()[:16]
    try:
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        key = (aki.key_identifier or b"").hex()[:16] or "nokey"
    except x509.ExtensionNotFound:
        key = "nokey"
    return f"{issuer}-{key}.crl"


def _newer(new: x509.CertificateRevocationList, old: x509.CertificateRevocationList) -> bool:
    return new.last_update_utc > old.last_update_utc


def import_crl(source: Path, directory: Path, *, force: bool = False) -> Imported:
    """Stores the CRL in ``source`` in ``directory``; ValueError when it is not a CRL."""
    crl = _load(source.read_bytes(), source)
    target = directory / stored_name(crl)
    outcome: Outcome = "imported"
    if target.exists():
        held = _load(target.read_bytes(), target)
        if held.public_bytes(serialization.Encoding.DER) == crl.public_bytes(
            serialization.Encoding.DER
        ):
            outcome = "unchanged"
        elif not _newer(crl, held) and not force:
            outcome = "older"
        else:
            outcome = "replaced"
    if outcome in ("imported", "replaced"):
        directory.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so the store never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".import-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(crl.public_bytes(serialization.Encoding.DER))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Imported(source, target, outcome, crl.issuer.rfc4514_string(), len(list(crl)))
