"""Issuing-CA certificates fetched from the caIssuers URLs of certificates (RFC 5280 AIA).

A card whose issuing CA is not configured still finds its path: the validator asks for the
issuers named in the card certificate's AIA, and in theirs, up to a few steps. Whatever is
fetched only offers candidates to path building; trust still ends at a configured anchor.
Answers are cached per URL for `lifetime`; a URL that failed is not asked again for a while.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[bytes]]
Clock = Callable[[], datetime]

MAX_DEPTH = 4  # a card, its issuing CA, and intermediates up to a bridge
RETRY_FAILED = timedelta(seconds=60)
MAX_CERTIFICATES = 64  # a caIssuers file with more is not what we are after


@dataclass(slots=True)
class _Entry:
    certificates: tuple[x509.Certificate, ...]
    fetched: datetime
    failed: bool = False


def parse_ca_issuers(data: bytes) -> list[x509.Certificate]:
    """The certificates in a caIssuers file: DER or PEM certificate, or a PKCS#7 bundle."""
    if b"-----BEGIN" in data:
        if b"PKCS7" in data:
            return list(pkcs7.load_pem_pkcs7_certificates(data))
        return x509.load_pem_x509_certificates(data)
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    with warnings.catch_warnings():
        # CAs' bundles are often BER (unsorted SET OF); cryptography reads them, warning.
        warnings.simplefilter("ignore", UserWarning)
        return list(pkcs7.load_der_pkcs7_certificates(data))


def ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    """The http(s) caIssuers URLs of ``cert`` (LDAP ones are left out)."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and str(d.access_location.value).lower().startswith(("http://", "https://"))
    ]


class AiaIssuers:
    """Fetches and caches the certificates caIssuers URLs point at."""

    def __init__(self, fetch: Fetch, *, lifetime: timedelta, clock: Clock) -> None:
        self._fetch = fetch
        self._lifetime = lifetime
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self.fetches = 0

    async def issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Candidate issuers of ``cert`` and of those, found through AIA, nearest first."""
        found: dict[bytes, x509.Certificate] = {}
        frontier = [cert]
        for _ in range(MAX_DEPTH):
            following: list[x509.Certificate] = []
            for subject in frontier:
                for url in ca_issuers_urls(subject):
                    for candidate in await self._certificates(url):
                        der = candidate.public_bytes(Encoding.DER)
                        if der in found or candidate.subject != subject.issuer:
                            continue
                        found[der] = candidate
                        if candidate.issuer != candidate.subject:
                            following.append(candidate)
            if not following:
                break
            frontier = following
        return list(found.values())

    async def _certificates(self, url: str) -> tuple[x509.Certificate, ...]:
        now = self._clock()
        entry = self._cache.get(url)
        if entry is not None:
            wait = RETRY_FAILED if entry.failed else self._lifetime
            if now - entry.fetched < wait:
                return entry.certificates
        self.fetches += 1
        try:
            certs = parse_ca_issuers(await self._fetch(url))[:MAX_CERTIFICATES]
        except (OSError, ValueError) as exc:
            log.warning("caIssuers %s: %s", url, exc)
            kept = entry.certificates if entry is not None else ()
            self._cache[url] = _Entry(kept, now, failed=True)
            return kept
        self._cache[url] = _Entry(tuple(certs), now)
        return tuple(certs)
