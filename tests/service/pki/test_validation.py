"""Certificate validation against the project's test PKI, its CRLs and OCSP over HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from accessd.validation.chuid import validate_chuid, verify_chuid_signature
from accessd.validation.errors import ValidationError
from accessd.validation.purpose import CARD_AUTH, CONTENT_SIGNING, PIV_AUTH
from accessd.validation.revocation import OcspMode, RevocationStore
from accessd.validation.validator import CertificateValidator
from drivers.piv.chuid import Chuid
from simulators.pki import PkiServer, TestPki, free_port


class Clock:
    """A clock the test moves by hand; starts at the real time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    pki: TestPki
    server: PkiServer
    clock: Clock

    async def validator(
        self, *, grace: timedelta = timedelta(hours=12), ocsp_mode: OcspMode = "fallback"
    ) -> tuple[CertificateValidator, RevocationStore]:
        store = RevocationStore(grace=grace, ocsp_mode=ocsp_mode, clock=self.clock)
        validator = CertificateValidator(
            [self.pki.root.cert], store, intermediates=[self.pki.ca.cert]
        )
        return validator, store


@pytest.fixture
async def world() -> AsyncIterator[World]:
    port = free_port()
    pki = TestPki.create(base_url=f"http://127.0.0.1:{port}")
    async with PkiServer(pki, port) as server:
        yield World(pki, server, Clock())


def der(cert: object) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined, no-any-return]


async def refused(validator: CertificateValidator, cert_der: bytes, purpose: object) -> str:
    with pytest.raises(ValidationError) as caught:
        await validator.validate(cert_der, purpose)  # type: ignore[arg-type]
    return str(caught.value.code)


async def test_good_9a_and_9e_are_accepted_for_their_purposes(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card(algorithms={"9a": "rsa2048", "9e": "p256"})
        auth = await validator.validate(der(card.certificates["9a"]), PIV_AUTH)
        cak = await validator.validate(der(card.certificates["9e"]), CARD_AUTH)
    assert auth.fascn == card.fascn and cak.fascn == card.fascn
    assert auth.card_uuid == card.card_uuid == cak.card_uuid
    assert auth.revocation_source == "crl"
    assert auth.serial == card.certificates["9a"].serial_number
    assert auth.public_key.public_numbers() == card.keys["9a"].public_key().public_numbers()
    assert card.fascn.person_identifier not in repr(auth)  # the FASC-N repr is redacted
    assert auth.reusable_until <= auth.not_after


async def test_content_signer_is_accepted_for_content_signing(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        result = await validator.validate(world.pki.content_signer.der, CONTENT_SIGNING)
    assert result.purpose == "content_signing"


async def test_a_9a_certificate_presented_as_card_authentication_is_refused(
    world: World,
) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card()
        assert await refused(validator, der(card.certificates["9a"]), CARD_AUTH) == "policy"
        assert await refused(validator, der(card.certificates["9e"]), PIV_AUTH) == "policy"


async def test_expired_card_is_refused(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card(variant="expired")
        assert await refused(validator, der(card.certificates["9a"]), PIV_AUTH) == "expired"


async def test_card_from_another_issuer_is_untrusted(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card(variant="wrong_issuer")
        assert await refused(validator, der(card.certificates["9e"]), CARD_AUTH) == "untrusted"


async def test_certificate_revoked_by_crl_is_refused_with_date_and_reason(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card()
        world.pki.revoke(card.certificates["9a"])
        with pytest.raises(ValidationError) as caught:
            await validator.validate(der(card.certificates["9a"]), PIV_AUTH)
    assert caught.value.code == "revoked"
    assert caught.value.revoked_at is not None
    assert caught.value.revocation_reason == "key_compromise"
    assert "CRL" in caught.value.detail


async def test_certificate_revoked_by_ocsp_is_refused_though_the_crl_is_older(
    world: World,
) -> None:
    validator, store = await world.validator(ocsp_mode="always")
    async with store:
        first = world.pki.issue_card()
        second = world.pki.issue_card()
        good = await validator.validate(der(first.certificates["9a"]), PIV_AUTH)
        assert good.revocation_source == "ocsp"
        crl_hits = world.server.requests["/crl/ca.crl"]
        world.pki.revoke(second.certificates["9a"])
        with pytest.raises(ValidationError) as caught:
            await validator.validate(der(second.certificates["9a"]), PIV_AUTH)
    # The cached CRL (fetched before the revocation) was still fresh: only OCSP knew.
    assert world.server.requests["/crl/ca.crl"] == crl_hits
    assert caught.value.code == "revoked"
    assert "OCSP" in caught.value.detail


async def test_offline_past_the_freshness_limit_fails_closed(world: World) -> None:
    validator, store = await world.validator(grace=timedelta(hours=12))
    async with store:
        card = world.pki.issue_card()
        cert = der(card.certificates["9a"])
        await validator.validate(cert, PIV_AUTH)
        world.server.online = False
        # The CRL lives a day; a day and 13 hours later it is past nextUpdate + grace.
        world.clock.advance(timedelta(days=1, hours=13))
        await store.refresh()
        assert store.failures(f"{world.server.url}/crl/ca.crl") == 1
        with pytest.raises(ValidationError) as caught:
            await validator.validate(cert, PIV_AUTH)
    assert caught.value.code == "revocation_unknown"


async def test_offline_within_the_grace_is_accepted(world: World) -> None:
    validator, store = await world.validator(grace=timedelta(hours=12))
    async with store:
        card = world.pki.issue_card()
        cert = der(card.certificates["9a"])
        await validator.validate(cert, PIV_AUTH)
        world.server.online = False
        # Past the CRL's nextUpdate, inside the grace; past the cache's reuse, so the
        # path is built again from the last good CRL.
        world.clock.advance(timedelta(days=1, hours=6))
        await store.refresh()
        result = await validator.validate(cert, PIV_AUTH)
    assert validator.chain_builds == 2
    assert result.reusable_until <= world.clock.now + timedelta(hours=6)


async def test_a_revocation_learned_on_refresh_evicts_the_cached_result(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card()
        cert = der(card.certificates["9a"])
        other = der(world.pki.issue_card().certificates["9a"])
        await validator.validate(cert, PIV_AUTH)
        await validator.validate(other, PIV_AUTH)
        assert validator.cached == 2
        world.pki.revoke(card.certificates["9a"])
        await store.refresh()
        assert validator.cached == 1  # only the revoked card's result went
        assert await refused(validator, cert, PIV_AUTH) == "revoked"
        await validator.validate(other, PIV_AUTH)
    assert validator.chain_builds == 3


async def test_a_warm_validation_builds_no_chain_and_fetches_nothing(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card()
        cert = der(card.certificates["9e"])
        first = await validator.validate(cert, CARD_AUTH)
        hits = sum(world.server.requests.values())
        for _ in range(5):
            again = await validator.validate(cert, CARD_AUTH)
    assert again is first
    assert validator.chain_builds == 1
    assert sum(world.server.requests.values()) == hits


async def test_the_cached_result_is_not_reused_past_its_horizon(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        cert = der(world.pki.issue_card().certificates["9e"])
        first = await validator.validate(cert, CARD_AUTH)
        world.clock.now = first.reusable_until + timedelta(seconds=1)
        await validator.validate(cert, CARD_AUTH)
    assert validator.chain_builds == 2


async def test_garbage_is_malformed(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        assert await refused(validator, b"\x30\x03\x02\x01\x01", PIV_AUTH) == "malformed"


def test_refresh_interval_is_at_most_a_day() -> None:
    with pytest.raises(ValueError):
        RevocationStore(refresh=timedelta(hours=25))


async def test_chuid_signature_verifies_and_its_signer_validates(world: World) -> None:
    validator, store = await world.validator()
    async with store:
        card = world.pki.issue_card()
        chuid = Chuid.decode(card.chuid)
        signer = verify_chuid_signature(chuid)
        result = await validate_chuid(chuid, validator)
    assert signer == world.pki.content_signer.cert
    assert result.purpose == "content_signing"


async def test_a_tampered_chuid_is_refused(world: World) -> None:
    card = world.pki.issue_card(variant="tampered_chuid")
    with pytest.raises(ValidationError) as caught:
        verify_chuid_signature(Chuid.decode(card.chuid))
    assert caught.value.code == "chuid_signature"


def test_a_chuid_with_another_cards_fascn_is_refused(world: World) -> None:
    card, other = world.pki.issue_card(), world.pki.issue_card()
    chuid = Chuid.decode(card.chuid)
    swapped = dataclasses.replace(chuid, fascn=Chuid.decode(other.chuid).fascn)
    forged = Chuid.decode(swapped.encode())
    with pytest.raises(ValidationError) as caught:
        verify_chuid_signature(forged)
    assert "message digest" in caught.value.detail
