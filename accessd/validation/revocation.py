"""CRLs and OCSP answers, fetched on a schedule and kept as the last good copy.

The validator never waits on the network for a certificate whose revocation data is
already here: the refresh loop fetches in the background, and a fetch that fails leaves
the last good copy in place. A copy is usable until its nextUpdate plus a grace period
(offline operation); past that it is withheld from validation, which then fails closed
with ``revocation_unknown``. Listeners hear about every accepted CRL and OCSP answer, so
the validator can evict cached results the new data revokes.

Sites without a network path to the CAs give CRLs as files: a directory the store reads
again on its own schedule (``accessd crl import`` puts files there), and `Mirrors` send
every fetch to a local copy of a CA's repository. The CRLs that cover an OCSP responder's
own certificate are fetched with its answer, so the responder can be checked too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import aiohttp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x509_ocsp

from accessd.validation.mirrors import Mirrors
from drivers.listeners import Listeners
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

#: FIPS 201-3 requires cached validation results to be refreshed at least daily.
MAX_REFRESH = timedelta(hours=24)
#: Lifetime assumed for revocation data that carries no nextUpdate.
NO_NEXT_UPDATE_LIFETIME = timedelta(hours=24)
#: A failed source is not retried inline (on a cold validation) sooner than this.
INLINE_RETRY = timedelta(seconds=10)

#: CRL files larger than this in the watched directory are skipped (a CRL of a large CA
#: is a few megabytes).
MAX_CRL_FILE = 64 << 20
CRL_SUFFIXES = (".crl", ".der", ".pem")

OcspMode = Literal["never", "fallback", "always"]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def issuer_key(name: asn1_x509.Name) -> bytes:
    """A comparison key for a distinguished name that ignores string-type differences."""
    key: str = name.hashable
    return key.encode("utf-8")


@dataclass(frozen=True, slots=True)
class CrlRecord:
    """One CRL as accepted into the store."""

    source: str  # the distribution-point URL, "static:<n>", or "file:<name>" from the directory
    crl: asn1_crl.CertificateList
    issuer: bytes
    this_update: datetime
    next_update: datetime | None
    revoked: frozenset[int]
    received: datetime

    def usable_until(self, grace: timedelta) -> datetime:
        end = self.next_update or self.this_update + NO_NEXT_UPDATE_LIFETIME
        return end + grace

    @property
    def lifetime(self) -> timedelta:
        end = self.next_update or self.this_update + NO_NEXT_UPDATE_LIFETIME
        return max(end - self.this_update, timedelta(0))


@dataclass(frozen=True, slots=True)
class OcspRecord:
    """One OCSP answer about one certificate."""

    url: str
    issuer: bytes
    serial: int
    response: asn1_ocsp.OCSPResponse
    status: str  # "good", "revoked" or "unknown" as the responder said
    this_update: datetime
    next_update: datetime | None
    received: datetime

    def usable_until(self, grace: timedelta) -> datetime:
        end = self.next_update or self.this_update + NO_NEXT_UPDATE_LIFETIME
        return end + grace

    @property
    def lifetime(self) -> timedelta:
        end = self.next_update or self.this_update + NO_NEXT_UPDATE_LIFETIME
        return max(end - self.this_update, timedelta(0))


@dataclass(frozen=True, slots=True)
class RevocationUpdate:
    """Told to listeners when new data is accepted: who it revokes, for which issuer."""

    issuer: bytes
    revoked: frozenset[int]
    source: Literal["crl", "ocsp"]


@dataclass(slots=True)
class _CrlSource:
    url: str
    issuer_cert: x509.Certificate | None  # to check a fetched CRL before it replaces ours
    record: CrlRecord | None = None
    last_attempt: datetime | None = None
    failures: int = 0


@dataclass(slots=True)
class _OcspSubject:
    url: str
    cert: x509.Certificate
    issuer_cert: x509.Certificate
    issuer: bytes
    record: OcspRecord | None = None
    last_attempt: datetime | None = None
    failures: int = 0
    responder_crls: tuple[str, ...] = ()  # CRLs that cover the responder's certificate


class FetchFailed(OSError):
    """A repository fetch (CRL, OCSP, caIssuers) that did not bring an answer."""


@dataclass(frozen=True, slots=True)
class _FileStamp:
    size: int
    mtime_ns: int


@dataclass(slots=True)
class FetchStats:
    """Counters for the health endpoint and the tests."""

    crl_fetches: int = 0
    ocsp_fetches: int = 0
    failures: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


class RevocationStore:
    """CRLs by distribution point and OCSP answers by certificate, refreshed in the background.

    ``refresh`` must be at most 24 hours; ``grace`` is how long past nextUpdate a copy
    stays usable when no newer one can be fetched.
    """

    def __init__(
        self,
        *,
        refresh: timedelta = timedelta(minutes=15),
        grace: timedelta = timedelta(hours=24),
        fetch_timeout: timedelta = timedelta(seconds=5),
        ocsp_mode: OcspMode = "fallback",
        clock: Clock = utcnow,
        mirrors: Mirrors | None = None,
        crl_directory: Path | None = None,
        directory_refresh: timedelta = timedelta(minutes=5),
        fetching: bool = True,
    ) -> None:
        if not timedelta(0) < refresh <= MAX_REFRESH:
            raise ValueError("refresh interval must be more than 0 and at most 24 hours")
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        self.refresh_interval = refresh
        self.grace = grace
        self.fetch_timeout = fetch_timeout
        self.ocsp_mode: OcspMode = ocsp_mode
        self.clock = clock
        self.mirrors = mirrors or Mirrors()
        self.crl_directory = crl_directory
        self.directory_refresh = directory_refresh
        #: False: nothing is fetched from the certificates' CRL and OCSP URLs; only the
        #: CRLs loaded or in ``crl_directory`` count (an isolated site).
        self.fetching = fetching
        self.stats = FetchStats()
        #: Bumped whenever accepted data changes; lets callers notice any change at all.
        self.generation = 0
        self._static: list[CrlRecord] = []
        self._files: dict[str, tuple[_FileStamp, CrlRecord]] = {}
        self._tasks = TaskSet("revocation store", logger=log)
        self._crl_sources: dict[str, _CrlSource] = {}
        self._ocsp: dict[tuple[bytes, int], _OcspSubject] = {}
        self._listeners: Listeners[[RevocationUpdate]] = Listeners("revocation update", logger=log)
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Opens the HTTP session and starts the refresh loop."""
        running = {task.get_name() for task in self._tasks}
        if self.crl_directory is not None:
            self.read_directory()
            if "crl-directory" not in running:
                self._tasks.spawn(self._directory_loop(), name="crl-directory")
        if "revocation-refresh" not in running:
            self._tasks.spawn(self._loop(), name="revocation-refresh")

    async def aclose(self) -> None:
        await self._tasks.close()
        # A store may be started again after it was closed (tests do).
        self._tasks = TaskSet("revocation store", logger=log)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RevocationStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def add_listener(self, listener: Callable[[RevocationUpdate], None]) -> Callable[[], None]:
        """``listener(RevocationUpdate)`` for each CRL or OCSP answer accepted; returns the
        function that removes it."""
        return self._listeners.add(listener)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval.total_seconds())
            try:
                await self.refresh()
            except Exception:  # the loop must outlive any one bad round
                log.exception("revocation refresh round failed")

    async def _directory_loop(self) -> None:
        while True:
            await asyncio.sleep(self.directory_refresh.total_seconds())
            try:
                self.read_directory()
            except Exception:  # the loop must outlive any one bad round
                log.exception("reading the CRL directory failed")

    # --- inputs ------------------------------------------------------------------------

    def read_directory(self) -> int:
        """Reads the CRL directory again: new and changed files replace what they held,
        removed files are forgotten. Returns how many CRLs it holds. A file that is not a
        CRL is skipped with a warning, never fatal: the other files still count."""
        directory = self.crl_directory
        if directory is None:
            return 0
        seen: dict[str, tuple[_FileStamp, CrlRecord]] = {}
        try:
            paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in CRL_SUFFIXES)
        except OSError as exc:
            log.warning("CRL directory %s: %s", directory, exc)
            return len(self._files)
        for path in paths:
            try:
                info = path.stat()
                stamp = _FileStamp(info.st_size, info.st_mtime_ns)
                known = self._files.get(path.name)
                if known is not None and known[0] == stamp:
                    seen[path.name] = known
                    continue
                if info.st_size > MAX_CRL_FILE:
                    raise ValueError(f"larger than {MAX_CRL_FILE} bytes")
                record = _crl_record(f"file:{path.name}", crl_der(path.read_bytes()), self.clock())
            except (OSError, ValueError) as exc:
                log.warning("CRL file %s skipped: %s", path.name, exc)
                continue
            seen[path.name] = (stamp, record)
            if known is None or known[1].revoked != record.revoked:
                self._accepted(RevocationUpdate(record.issuer, record.revoked, "crl"))
        if seen.keys() != self._files.keys():
            self.generation += 1
        self._files = seen
        return len(seen)

    def add_crl(self, der: bytes) -> CrlRecord:
        """Adds a CRL from configuration (no URL, never refreshed); returns its record."""
        record = _crl_record(f"static:{len(self._static)}", der, self.clock())
        self._static.append(record)
        self._accepted(RevocationUpdate(record.issuer, record.revoked, "crl"))
        return record

    async def prepare(
        self, chain: Sequence[tuple[asn1_x509.Certificate, x509.Certificate, x509.Certificate]]
    ) -> None:
        """Makes sure revocation data for each (certificate, its twin, its issuer) is here.

        Called on a cold validation only. Sources not seen before are registered for the
        refresh loop and fetched now; a source with a usable copy is not fetched. Without
        fetching, the CRLs held already are all there is.
        """
        if not self.fetching:
            return
        now = self.clock()
        waits = []
        for cert, _, issuer in chain:
            for url in _http_crl_urls(cert):
                source = self._crl_sources.get(url)
                if source is None:
                    source = self._crl_sources[url] = _CrlSource(url, issuer)
                if self._needs_inline(source.record, source.last_attempt, now):
                    waits.append(self._fetch_crl(source))
        if waits:
            await asyncio.gather(*waits)
        waits = []
        for cert, crypto_cert, issuer in chain:
            if self.ocsp_mode == "never" or not cert.ocsp_urls:
                continue
            if self.ocsp_mode == "fallback" and self._crl_usable_for(cert, now):
                continue
            key = (issuer_key(cert.issuer), cert.serial_number)
            subject = self._ocsp.get(key)
            if subject is None:
                subject = self._ocsp[key] = _OcspSubject(
                    cert.ocsp_urls[0], crypto_cert, issuer, key[0]
                )
            if self._needs_inline(subject.record, subject.last_attempt, now):
                waits.append(self._fetch_ocsp(subject))
        if waits:
            await asyncio.gather(*waits)

    def _needs_inline(
        self, record: CrlRecord | OcspRecord | None, last: datetime | None, now: datetime
    ) -> bool:
        if record is not None and record.usable_until(self.grace) >= now:
            return False
        return last is None or now - last >= INLINE_RETRY

    def _crl_usable_for(self, cert: asn1_x509.Certificate, now: datetime) -> bool:
        for url in _http_crl_urls(cert):
            source = self._crl_sources.get(url)
            if source and source.record and source.record.usable_until(self.grace) >= now:
                return True
        return False

    # --- outputs -----------------------------------------------------------------------

    def revinfo_for(
        self, certs: Iterable[asn1_x509.Certificate]
    ) -> tuple[list[CrlRecord], list[OcspRecord]]:
        """The usable CRLs and OCSP answers that bear on these certificates, right now."""
        now = self.clock()
        held = [*self._static, *(record for _, record in self._files.values())]
        crls = [r for r in held if r.usable_until(self.grace) >= now]

        def fetched(url: str) -> None:
            source = self._crl_sources.get(url)
            record = source.record if source is not None else None
            if record is None or record.usable_until(self.grace) < now:
                return
            if all(r is not record for r in crls):
                crls.append(record)

        ocsps: list[OcspRecord] = []
        for cert in certs:
            for url in _http_crl_urls(cert):
                fetched(url)
            subject = self._ocsp.get((issuer_key(cert.issuer), cert.serial_number))
            if subject and subject.record and subject.record.usable_until(self.grace) >= now:
                ocsps.append(subject.record)
                for url in subject.responder_crls:
                    fetched(url)
        return crls, ocsps

    def failures(self, url: str) -> int:
        """Consecutive failed fetches of one source (0 after a success)."""
        source = self._crl_sources.get(url)
        if source is not None:
            return source.failures
        return sum(s.failures for s in self._ocsp.values() if s.url == url)

    # --- fetching ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Fetches every known source once, concurrently; failures keep the old copy."""
        await asyncio.gather(
            *(self._fetch_crl(s) for s in list(self._crl_sources.values())),
            *(self._fetch_ocsp(s) for s in list(self._ocsp.values())),
        )

    async def fetch(self, url: str) -> bytes:
        """GET ``url`` (through its mirror); FetchFailed when no answer comes."""
        try:
            async with self._http().get(self.mirrors(url)) as response:
                response.raise_for_status()
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchFailed(f"{url}: {exc}") from exc

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.fetch_timeout.total_seconds())
            )
        return self._session

    def _failed(self, source: _CrlSource | _OcspSubject, what: str, exc: BaseException) -> None:
        source.failures += 1
        self.stats.failures += 1
        self.stats.by_source[source.url] = self.stats.by_source.get(source.url, 0) + 1
        log.warning("%s from %s failed (%d in a row): %s", what, source.url, source.failures, exc)

    async def _fetch_crl(self, source: _CrlSource) -> None:
        source.last_attempt = self.clock()
        self.stats.crl_fetches += 1
        try:
            async with self._http().get(self.mirrors(source.url)) as response:
                response.raise_for_status()
                der = await response.read()
            record = _crl_record(source.url, der, self.clock())
            _check_crl(record, der, source)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._failed(source, "CRL fetch", exc)
            return
        source.failures = 0
        if source.record is not None and record.this_update < source.record.this_update:
            # An older CRL than ours (a stale mirror or a replay) must not roll us back.
            return
        source.record = record
        self._drop_contradicted_ocsp(record)
        self._accepted(RevocationUpdate(record.issuer, record.revoked, "crl"))

    async def _fetch_ocsp(self, subject: _OcspSubject) -> None:
        subject.last_attempt = self.clock()
        self.stats.ocsp_fetches += 1
        try:
            request = (
                x509_ocsp.OCSPRequestBuilder()
                .add_certificate(subject.cert, subject.issuer_cert, hashes.SHA1())  # noqa: S303
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            async with self._http().post(
                self.mirrors(subject.url),
                data=request,
                headers={"Content-Type": "application/ocsp-request"},
            ) as response:
                response.raise_for_status()
                der = await response.read()
            record = _ocsp_record(subject, der, self.clock())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._failed(subject, "OCSP request", exc)
            return
        subject.failures = 0
        if subject.record is not None and record.this_update < subject.record.this_update:
            return
        await self._responder_crls(subject, record)
        subject.record = record
        revoked = frozenset({record.serial}) if record.status == "revoked" else frozenset()
        self._accepted(RevocationUpdate(record.issuer, revoked, "ocsp"))

    async def _responder_crls(self, subject: _OcspSubject, record: OcspRecord) -> None:
        # A delegated responder's certificate is checked for revocation like any other
        # (unless it says id-pkix-ocsp-nocheck); its CRLs come with the answer, so a
        # revoked responder is caught without a second round trip at validation.
        urls: list[str] = []
        for cert in responder_certificates(record.response):
            urls.extend(u for u in _http_crl_urls(cert) if u not in urls)
        subject.responder_crls = tuple(urls)
        waits = []
        now = self.clock()
        for url in urls:
            source = self._crl_sources.get(url)
            if source is None:
                source = self._crl_sources[url] = _CrlSource(url, subject.issuer_cert)
            if self._needs_inline(source.record, source.last_attempt, now):
                waits.append(self._fetch_crl(source))
        if waits:
            await asyncio.gather(*waits)

    def _drop_contradicted_ocsp(self, record: CrlRecord) -> None:
        # A CRL newer than an OCSP "good" that lists the serial wins: otherwise the
        # validator, which asks OCSP first, would keep accepting a revoked card.
        for (issuer, serial), subject in self._ocsp.items():
            if (
                issuer == record.issuer
                and serial in record.revoked
                and subject.record is not None
                and subject.record.status != "revoked"
                and subject.record.this_update <= record.this_update
            ):
                subject.record = None

    def _accepted(self, update: RevocationUpdate) -> None:
        self.generation += 1
        self._listeners.emit(update)


def _http_crl_urls(cert: asn1_x509.Certificate) -> list[str]:
    urls: list[str] = []
    for point in cert.crl_distribution_points:
        name = point["distribution_point"]
        if name.name != "full_name":
            continue
        for general in name.chosen:
            if general.name == "uniform_resource_identifier":
                url = general.native
                if url.lower().startswith(("http://", "https://")):
                    urls.append(url)
    return urls


def crl_der(data: bytes) -> bytes:
    """A CRL file's DER: the file itself, or the first PEM X509 CRL block in it."""
    if b"-----BEGIN X509 CRL-----" in data:
        try:
            return x509.load_pem_x509_crl(data).public_bytes(serialization.Encoding.DER)
        except ValueError as exc:
            raise ValueError(f"not a PEM CRL: {exc}") from exc
    return data


def responder_certificates(response: asn1_ocsp.OCSPResponse) -> list[asn1_x509.Certificate]:
    """The certificates an OCSP response carries (a delegated responder's own among them)."""
    try:
        basic = response["response_bytes"]["response"].parsed
        return list(basic["certs"] or [])
    except (KeyError, TypeError, ValueError):
        return []


def _crl_record(source: str, der: bytes, received: datetime) -> CrlRecord:
    try:
        parsed = asn1_crl.CertificateList.load(der)
        tbs = parsed["tbs_cert_list"]
        this_update = tbs["this_update"].native
        next_update = tbs["next_update"].native
        revoked = frozenset(
            entry["user_certificate"].native for entry in tbs["revoked_certificates"]
        )
        issuer = issuer_key(tbs["issuer"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a DER CRL: {exc}") from exc
    return CrlRecord(source, parsed, issuer, this_update, next_update, revoked, received)


def _check_crl(record: CrlRecord, der: bytes, source: _CrlSource) -> None:
    """Refuses a fetched CRL not signed by the issuer it is meant to cover."""
    if source.issuer_cert is None:
        return
    crl = x509.load_der_x509_crl(der)
    if crl.issuer != source.issuer_cert.subject:
        raise ValueError("CRL issuer is not the certificate's issuer")
    if not crl.is_signature_valid(source.issuer_cert.public_key()):  # type: ignore[arg-type]
        raise ValueError("CRL signature does not verify with the issuer's key")


def _ocsp_record(subject: _OcspSubject, der: bytes, received: datetime) -> OcspRecord:
    try:
        parsed = asn1_ocsp.OCSPResponse.load(der)
        status = parsed["response_status"].native
        if status != "successful":
            raise ValueError(f"OCSP responder answered {status}")
        data = parsed["response_bytes"]["response"].parsed["tbs_response_data"]
        for single in data["responses"]:
            if single["cert_id"]["serial_number"].native == subject.cert.serial_number:
                return OcspRecord(
                    url=subject.url,
                    issuer=subject.issuer,
                    serial=subject.cert.serial_number,
                    response=parsed,
                    status=single["cert_status"].name,
                    this_update=single["this_update"].native,
                    next_update=single["next_update"].native,
                    received=received,
                )
    except (TypeError, KeyError) as exc:
        raise ValueError(f"not a DER OCSP response: {exc}") from exc
    raise ValueError("OCSP response does not answer for this certificate")
