"""Builds the card-authentication stack from settings: anchors, revocation, validator."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.authn.challenges import ChallengeBook
from accessd.authn.proofs import Authenticator
from accessd.authn.reader_keys import ReaderKeys
from accessd.config import Settings
from accessd.validation.errors import ValidationError
from accessd.validation.factory import build_validator
from accessd.validation.purpose import Purpose
from accessd.validation.result import ValidatedCertificate
from accessd.validation.revocation import RevocationStore
from accessd.validation.validator import CertificateValidator


class NoTrustAnchors:
    """The validator of a service configured without trust anchors: it trusts nothing."""

    async def validate(self, cert_der: bytes, purpose: Purpose) -> ValidatedCertificate:
        raise ValidationError(
            "untrusted", "no trust anchors are configured (settings: trust_anchors)"
        )


@dataclass
class CardAuthentication:
    """What the service holds for card authentication; start and stop it with the app."""

    authenticator: Authenticator
    validator: CertificateValidator | None
    revocation: RevocationStore | None

    async def start(self) -> None:
        if self.revocation is not None:
            await self.revocation.start()

    async def stop(self) -> None:
        if self.revocation is not None:
            await self.revocation.aclose()


def build_card_authentication(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> CardAuthentication:
    """The challenge book, validator and authenticator the settings describe."""
    key = None
    if settings.challenge_key is not None:
        key = bytes.fromhex(settings.challenge_key.get_secret_value())
    challenges = ChallengeBook(key, ttl=settings.challenge_ttl_seconds)
    keys = ReaderKeys(sessions)
    if not settings.trust_anchors:
        return CardAuthentication(Authenticator(challenges, NoTrustAnchors(), keys), None, None)
    validator, store = build_validator(settings)
    return CardAuthentication(Authenticator(challenges, validator, keys), validator, store)
