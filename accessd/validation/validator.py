"""Certificate validation for PIV keys: path to a trust anchor, policy, usage, revocation.

Path building and RFC 5280 processing are pyhanko-certvalidator's; this module chooses
its inputs (anchors, revocation data from the store, the purpose's policy set, the clock),
adds the PIV usage checks, translates its errors into `ValidationError`, and caches each
result per (certificate bytes, purpose) so that a warm validation is one hash and one
dictionary lookup. Cached results are evicted when the revocation store accepts data that
revokes a certificate in their path, and expire on their own at `reusable_until`.

The accepted certificate policies are configuration (`policies`, by purpose name), so a
test PKI's OIDs are a setting, never code. Issuers missing from the configured
intermediates are fetched from the certificate's AIA caIssuers (`aia`). An OCSP answer the
store holds is the answer: if its responder fails the RFC 6960 checks (expired, revoked,
not signed by the CA's delegate), the certificate is refused with ``ocsp_responder``
rather than quietly decided from a CRL, and a result names the source really used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator import errors as pv_errors
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    AlgorithmUsagePolicy,
    CertRevTrustPolicy,
    FreshnessReqType,
    PKIXValidationParams,
)
from pyhanko_certvalidator.revinfo.validate_ocsp import verify_ocsp_response
from pyhanko_certvalidator.validate import async_validate_path

from accessd.validation import ocsp_responder
from accessd.validation.aia import AiaIssuers
from accessd.validation.errors import ValidationError
from accessd.validation.purpose import Purpose
from accessd.validation.result import RevocationSource, ValidatedCertificate, piv_identifiers
from accessd.validation.revocation import (
    CrlRecord,
    OcspRecord,
    RevocationStore,
    RevocationUpdate,
    issuer_key,
    responder_certificates,
)

log = logging.getLogger(__name__)

_CacheKey = tuple[bytes, Purpose]
_Dep = tuple[bytes, int]  # (issuer name key, serial) of each certificate in the path

_KEY_USAGE_ATTRS = {
    "digital_signature": "digital_signature",
    "non_repudiation": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
}


@dataclass(slots=True)
class _Entry:
    result: ValidatedCertificate
    deps: tuple[_Dep, ...]


class CertificateValidator:
    """Validates end-entity certificates against configured anchors; see the module doc.

    `max_reuse` bounds how long a cached result is reused without rebuilding its path
    (FIPS 201-3 wants at least daily); `chain_builds` counts cold validations.
    """

    def __init__(
        self,
        trust_anchors: Sequence[bytes | x509.Certificate],
        store: RevocationStore,
        *,
        intermediates: Iterable[bytes | x509.Certificate] = (),
        max_reuse: timedelta = timedelta(hours=4),
        algorithm_policy: AlgorithmUsagePolicy | None = None,
        policies: Mapping[str, Iterable[str]] | None = None,
        aia: AiaIssuers | None = None,
    ) -> None:
        if not trust_anchors:
            raise ValueError("at least one trust anchor is needed")
        if not timedelta(0) < max_reuse <= timedelta(hours=24):
            raise ValueError("max_reuse must be more than 0 and at most 24 hours")
        known = [_pair(c) for c in (*trust_anchors, *intermediates)]
        self._anchors = [a for a, _ in known[: len(trust_anchors)]]
        self._intermediates = [a for a, _ in known[len(trust_anchors) :]]
        self._crypto_by_id = {a.issuer_serial: c for a, c in known}
        self._store = store
        self._clock = store.clock
        self._max_reuse = max_reuse
        self._algorithms = algorithm_policy
        self._policies = {name: frozenset(oids) for name, oids in (policies or {}).items()}
        self._aia = aia
        self._params: dict[Purpose, PKIXValidationParams] = {}
        self._cache: dict[_CacheKey, _Entry] = {}
        self._by_dep: dict[bytes, dict[int, set[_CacheKey]]] = {}
        self.chain_builds = 0
        store.add_listener(self._on_revocation_update)

    @property
    def cached(self) -> int:
        return len(self._cache)

    async def validate(
        self,
        cert_der: bytes,
        purpose: Purpose,
        intermediates: Iterable[bytes | x509.Certificate] = (),
    ) -> ValidatedCertificate:
        """The validated certificate, or `ValidationError` saying why not."""
        key = (hashlib.sha256(cert_der).digest(), purpose)
        entry = self._cache.get(key)
        if entry is not None:
            if self._clock() < entry.result.reusable_until:
                return entry.result
            self._evict(key)
        entry = await self._cold(cert_der, purpose, intermediates)
        self._remember(key, entry)
        return entry.result

    def clear(self) -> None:
        """Forgets every cached result (after a trust-anchor change, for instance)."""
        self._cache.clear()
        self._by_dep.clear()

    # --- the cold path -----------------------------------------------------------------

    async def _cold(
        self,
        cert_der: bytes,
        purpose: Purpose,
        intermediates: Iterable[bytes | x509.Certificate],
    ) -> _Entry:
        self.chain_builds += 1
        try:
            crypto_cert = x509.load_der_x509_certificate(cert_der)
            cert = asn1_x509.Certificate.load(cert_der)
            cert.native  # noqa: B018 -- parses eagerly, so bad DER fails here, not mid-path
        except ValueError as exc:
            raise ValidationError("malformed", "the certificate is not DER X.509") from exc
        supplied = [_pair(c) for c in intermediates]
        others = self._intermediates + [a for a, _ in supplied]
        crypto_by_id = dict(self._crypto_by_id)
        crypto_by_id.update((a.issuer_serial, c) for a, c in supplied)
        crypto_by_id[cert.issuer_serial] = crypto_cert
        now = self._clock()
        builder_ctx = self._context(others, now, [], [])
        try:
            paths = await builder_ctx.path_builder.async_build_paths(cert)
        except pv_errors.PathError as exc:
            fetched = [_pair(c) for c in await self._aia.issuers(crypto_cert)] if self._aia else []
            if not fetched:
                raise ValidationError(
                    "untrusted",
                    f"no path from {_describe(crypto_cert)} to a configured trust anchor: {exc}",
                ) from exc
            others = others + [a for a, _ in fetched]
            crypto_by_id.update((a.issuer_serial, c) for a, c in fetched)
            builder_ctx = self._context(others, now, [], [])
            try:
                paths = await builder_ctx.path_builder.async_build_paths(cert)
            except pv_errors.PathError as again:
                raise ValidationError(
                    "untrusted",
                    f"no path from {_describe(crypto_cert)} to a configured trust anchor, "
                    f"with the issuers its AIA names either: {again}",
                ) from again

        errors: list[ValidationError] = []
        for path in paths:
            try:
                return await self._validate_path(
                    path, builder_ctx, purpose, crypto_cert, crypto_by_id
                )
            except ValidationError as exc:
                errors.append(exc)
        # As the library does: a failure other than a bad signature says more.
        for error in errors:
            if error.code != "bad_signature":
                raise error
        raise errors[0]

    async def _validate_path(
        self,
        path: ValidationPath,
        builder_ctx: ValidationContext,
        purpose: Purpose,
        crypto_cert: x509.Certificate,
        crypto_by_id: dict[str, x509.Certificate],
    ) -> _Entry:
        chain_certs = list(path.iter_certs(include_root=True))
        # Each certificate's cryptography twin, found by issuer and serial: calling dump()
        # on a parsed asn1crypto certificate can re-encode it (unique-ID bit strings) and
        # break its signature for the library.
        twins = [crypto_by_id[c.issuer_serial] for c in chain_certs]
        pairs = [(chain_certs[i], twins[i], twins[i - 1]) for i in range(1, len(chain_certs))]
        await self._store.prepare(pairs)
        subjects = chain_certs[1:]
        crls, ocsps = self._store.revinfo_for(subjects)
        now = self._clock()
        ctx = self._context([], now, crls, ocsps, registry_from=builder_ctx)
        try:
            await async_validate_path(ctx, path, self._pkix(purpose))
            await _enforce_ocsp(path, ctx, subjects, crls, ocsps)
        except (pv_errors.ValidationError, pv_errors.PathError) as exc:
            raise _translate(exc) from exc
        _check_usage(crypto_cert, purpose)

        source, revinfo_until = self._revinfo_used(subjects, crls, ocsps)
        not_after = min(c["tbs_certificate"]["validity"]["not_after"].native for c in subjects)
        fascn, card_uuid = piv_identifiers(crypto_cert)
        result = ValidatedCertificate(
            purpose=purpose.name,
            subject=crypto_cert.subject.rfc4514_string(),
            issuer=crypto_cert.issuer.rfc4514_string(),
            serial=crypto_cert.serial_number,
            not_after=crypto_cert.not_valid_after_utc,
            sha256=hashlib.sha256(crypto_cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            fascn=fascn,
            card_uuid=card_uuid,
            public_key=crypto_cert.public_key(),
            revocation_source=source,
            validated_at=now,
            reusable_until=min(not_after, revinfo_until, now + self._max_reuse),
            certificate=crypto_cert,
        )
        deps = tuple((issuer_key(c.issuer), c.serial_number) for c in subjects)
        return _Entry(result, deps)

    def _context(
        self,
        others: list[asn1_x509.Certificate],
        now: datetime,
        crls: list[CrlRecord],
        ocsps: list[OcspRecord],
        registry_from: ValidationContext | None = None,
    ) -> ValidationContext:
        lifetimes = [r.lifetime for r in crls] + [r.lifetime for r in ocsps]
        # The store has already withheld anything past its own nextUpdate + grace; the
        # library's window (thisUpdate + the longest lifetime + grace) is therefore never
        # the stricter one, and its DEFAULT window (nextUpdate, no grace) would defeat
        # offline operation.
        revinfo_policy = CertRevTrustPolicy(
            REQUIRE_REVINFO,
            freshness=max(lifetimes, default=timedelta(0)) + self._store.grace,
            freshness_req_type=FreshnessReqType.MAX_DIFF_REVOCATION_VALIDATION,
        )
        return ValidationContext(
            trust_roots=self._anchors,
            other_certs=others,
            moment=now,
            allow_fetching=False,
            crls=[r.crl for r in crls],
            ocsps=[r.response for r in ocsps],
            revinfo_policy=revinfo_policy,
            algorithm_usage_policy=self._algorithms,
            certificate_registry=None
            if registry_from is None
            else registry_from.certificate_registry,
        )

    def _pkix(self, purpose: Purpose) -> PKIXValidationParams:
        params = self._params.get(purpose)
        if params is None:
            params = self._params[purpose] = PKIXValidationParams(
                user_initial_policy_set=self._policies.get(purpose.name, purpose.policies),
                initial_explicit_policy=purpose.explicit_policy,
                initial_policy_mapping_inhibit=purpose.policy_mapping_inhibit,
                initial_any_policy_inhibit=purpose.any_policy_inhibit,
            )
        return params

    def _revinfo_used(
        self,
        subjects: list[asn1_x509.Certificate],
        crls: list[CrlRecord],
        ocsps: list[OcspRecord],
    ) -> tuple[RevocationSource, datetime]:
        """Which source answered for the leaf, and until when all the answers used hold."""
        grace = self._store.grace
        ocsp_by_cert = {(r.issuer, r.serial): r for r in ocsps}
        until: datetime | None = None
        source: RevocationSource = "crl"
        for cert in subjects:
            # The library asks OCSP first when the certificate names a responder.
            answer = ocsp_by_cert.get((issuer_key(cert.issuer), cert.serial_number))
            if answer is not None and cert.ocsp_urls:
                used = answer.usable_until(grace)
                source = "ocsp"
            else:
                issuer = issuer_key(cert.issuer)
                matching = [r for r in crls if r.issuer == issuer] or crls
                # An indirect CRL is issued by another name; all CRLs bound us then.
                used = min(r.usable_until(grace) for r in matching)
                source = "crl"
            until = used if until is None else min(until, used)
        assert until is not None  # a validated path has at least the leaf
        return source, until

    # --- the cache ---------------------------------------------------------------------

    def _remember(self, key: _CacheKey, entry: _Entry) -> None:
        self._cache[key] = entry
        for issuer, serial in entry.deps:
            self._by_dep.setdefault(issuer, {}).setdefault(serial, set()).add(key)

    def _evict(self, key: _CacheKey) -> None:
        entry = self._cache.pop(key, None)
        if entry is None:
            return
        for issuer, serial in entry.deps:
            keys = self._by_dep.get(issuer, {}).get(serial)
            if keys is not None:
                keys.discard(key)

    def _on_revocation_update(self, update: RevocationUpdate) -> None:
        serials = self._by_dep.get(update.issuer)
        if not serials or not update.revoked:
            return
        hit = (
            serials.keys() & update.revoked
            if len(update.revoked) > len(serials)
            else (s for s in update.revoked if s in serials)
        )
        for serial in list(hit):
            for key in list(serials.get(serial, ())):
                log.info("revocation from %s evicts a cached result", update.source)
                self._evict(key)


async def _enforce_ocsp(
    path: ValidationPath,
    ctx: ValidationContext,
    subjects: list[asn1_x509.Certificate],
    crls: list[CrlRecord],
    ocsps: list[OcspRecord],
) -> None:
    """Refuses a certificate whose OCSP answer the store holds but whose responder fails.

    The library, asked for "CRL or OCSP", moves on to the CRL when an OCSP answer does not
    verify; a bad responder must stop the card instead, or a revoked card whose CRL is
    stale would pass on a forged "good".
    """
    answers = {(r.issuer, r.serial): r for r in ocsps}
    for cert in subjects:
        answer = answers.get((issuer_key(cert.issuer), cert.serial_number))
        if answer is None or not cert.ocsp_urls:
            continue
        try:
            await verify_ocsp_response(cert, path, ctx)
        except pv_errors.OCSPValidationError as exc:
            # The path's authority object (a trust anchor or an intermediate) holds its
            # certificate when it has one.
            issuer = getattr(path.find_issuing_authority(cert), "certificate", None)
            check = ocsp_responder.diagnose(
                answer,
                issuer if isinstance(issuer, asn1_x509.Certificate) else None,
                crls,
                ctx.moment,
            )
            raise ValidationError(
                "ocsp_responder",
                f"the OCSP answer from {answer.url} about {cert.subject.human_friendly} "
                f"was refused: {check or 'its responder fails RFC 6960'} "
                f"({_ocsp_failure(exc)})",
            ) from exc
        _refuse_revoked_nocheck_responder(answer, path.find_issuing_authority(cert), crls)


def _ocsp_failure(exc: pv_errors.OCSPValidationError) -> str:
    reasons = [str(exc.args[0]) if exc.args else type(exc).__name__]
    if isinstance(exc, pv_errors.OCSPValidationIndeterminateError):
        reasons = [str(failure[0]) for failure in exc.failures] or reasons
    cause = exc.__cause__
    while cause is not None:
        reasons.append(str(cause))
        cause = cause.__cause__
    return "; ".join(reasons)


def _refuse_revoked_nocheck_responder(
    answer: OcspRecord, issuer: object, crls: list[CrlRecord]
) -> None:
    """RFC 6960 lets a client skip revocation checking of a responder certificate that
    carries id-pkix-ocsp-nocheck. We skip the fetching, never the knowing: when a CRL we
    already hold from the responder's CA lists it revoked, its answers are refused (a
    revoked responder key may be in anyone's hands). With no such CRL at hand, nocheck is
    honoured as the RFC allows."""
    public_key = getattr(issuer, "public_key", None)
    if public_key is None:
        return
    try:
        ca_key = serialization.load_der_public_key(public_key.dump())
    except ValueError:
        return
    for responder in responder_certificates(answer.response):
        if responder.ocsp_no_check_value is None:
            continue  # checked by the library with the CRLs like any other certificate
        for record in crls:
            if (
                record.issuer == issuer_key(responder.issuer)
                and responder.serial_number in record.revoked
                and _crl_signed_by(record, ca_key)
            ):
                raise ValidationError(
                    "ocsp_responder",
                    f"the OCSP responder {responder.subject.human_friendly} of {answer.url} "
                    "is revoked by its CA's CRL; its id-pkix-ocsp-nocheck does not make a "
                    "revoked responder trustworthy",
                )


def _crl_signed_by(record: CrlRecord, key: object) -> bool:
    try:
        crl = x509.load_der_x509_crl(record.crl.dump())
        return crl.is_signature_valid(cast(CertificateIssuerPublicKeyTypes, key))
    except (ValueError, TypeError):
        return False


def _pair(cert: bytes | x509.Certificate) -> tuple[asn1_x509.Certificate, x509.Certificate]:
    """The certificate as both libraries' objects, each parsed from the same DER."""
    try:
        if isinstance(cert, x509.Certificate):
            return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)), cert
        return asn1_x509.Certificate.load(cert), x509.load_der_x509_certificate(cert)
    except ValueError as exc:
        raise ValidationError("malformed", "a CA certificate is not DER X.509") from exc


def _describe(cert: x509.Certificate) -> str:
    return f'"{cert.subject.rfc4514_string()}" (issuer "{cert.issuer.rfc4514_string()}")'


def _translate(exc: Exception) -> ValidationError:
    message = str(exc)
    if isinstance(exc, pv_errors.RevokedError):
        return ValidationError(
            "revoked",
            message,
            revoked_at=exc.revocation_dt,
            revocation_reason=str(exc.reason.native),
        )
    if isinstance(exc, pv_errors.InsufficientRevinfoError):
        return ValidationError(
            "revocation_unknown",
            f"no fresh CRL or OCSP answer (offline past the freshness limit?): {message}",
        )
    if isinstance(exc, pv_errors.ExpiredError):
        return ValidationError("expired", message)
    if isinstance(exc, pv_errors.NotYetValidError):
        return ValidationError("not_yet_valid", message)
    if isinstance(exc, pv_errors.DisallowedAlgorithmError):
        return ValidationError("algorithm", message)
    if "no valid set of policies" in message or "policy" in message.lower():
        return ValidationError("policy", message)
    if "signature" in message:
        return ValidationError("bad_signature", message)
    return ValidationError("untrusted", message)


def _check_usage(cert: x509.Certificate, purpose: Purpose) -> None:
    if purpose.key_usage:
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise ValidationError(
                "usage", f"{purpose.name} needs key usage but the certificate has none"
            ) from None
        missing = sorted(u for u in purpose.key_usage if not getattr(usage, _KEY_USAGE_ATTRS[u]))
        if missing:
            raise ValidationError("usage", f"{purpose.name} needs key usage {', '.join(missing)}")
    if purpose.extended_key_usage is not None:
        try:
            ekus = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            raise ValidationError(
                "usage",
                f"{purpose.name} needs extended key usage {purpose.extended_key_usage}; "
                "the certificate has none",
            ) from None
        if x509.ObjectIdentifier(purpose.extended_key_usage) not in ekus:
            raise ValidationError(
                "usage",
                f"{purpose.name} needs extended key usage {purpose.extended_key_usage}; "
                f"the certificate has {', '.join(e.dotted_string for e in ekus)}",
            )
