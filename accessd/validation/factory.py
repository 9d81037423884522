"""Builds the revocation store and the validator from the service settings."""

from __future__ import annotations

from datetime import timedelta

from accessd.config import Settings
from accessd.validation.aia import AiaIssuers
from accessd.validation.anchors import load_certificates
from accessd.validation.mirrors import Mirrors
from accessd.validation.revocation import RevocationStore
from accessd.validation.validator import CertificateValidator


def build_validator(settings: Settings) -> tuple[CertificateValidator, RevocationStore]:
    """The validator and its store; the caller starts the store (``await store.start()``)."""
    anchors = load_certificates(settings.trust_anchors)
    store = RevocationStore(
        refresh=timedelta(seconds=settings.revocation_refresh_seconds),
        grace=timedelta(seconds=settings.revocation_grace_seconds),
        fetch_timeout=timedelta(seconds=settings.revocation_fetch_timeout_seconds),
        ocsp_mode=settings.revocation_ocsp,
        mirrors=Mirrors(settings.revocation_mirrors),
        crl_directory=settings.crl_directory,
        directory_refresh=timedelta(seconds=settings.crl_refresh_seconds),
        fetching=settings.revocation_fetching,
    )
    aia = None
    if settings.aia_fetching:
        lifetime = timedelta(seconds=settings.aia_cache_seconds)
        aia = AiaIssuers(store.fetch, lifetime=lifetime, clock=store.clock)
    validator = CertificateValidator(
        anchors,
        store,
        intermediates=load_certificates(settings.intermediates),
        max_reuse=timedelta(seconds=settings.validation_cache_seconds),
        policies=settings.certificate_policies,
        aia=aia,
    )
    return validator, store
