"""Revocation as an operator configures it: CRL files imported and watched in a directory,
repository mirrors, AIA-fetched issuers and the accepted policy OIDs as settings, proven on
GSA's ICAM test PKI."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import ValidationError as SettingsError

from accessd.cli.main import main
from accessd.config import Settings
from accessd.validation.aia import RETRY_FAILED, AiaIssuers, ca_issuers_urls
from accessd.validation.errors import ValidationError
from accessd.validation.factory import build_validator
from accessd.validation.mirrors import Mirrors
from accessd.validation.purpose import CARD_AUTH, PIV_AUTH
from accessd.validation.validator import CertificateValidator
from drivers.piv import oids
from simulators.icam_card import CERTIFICATE_FILES, load_certificate
from simulators.icam_repository import IcamRepository, IcamRepositoryServer
from simulators.pki import free_port
from tests.icam_settings import (
    CARD_24_CA,
    ICAM_POLICIES,
    TRUST_ANCHORS,
    offline_intermediates,
    revocation_crls,
)
from tests.paths import ICAM_CARDS, ICAM_MISSING

icam = pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or "")
WITH_REVOCATIONS = ICAM_CARDS / "crls-with-revocations" / "ICAMTestCardGen3SigningCA.crl"
REISSUED_EMPTY = (
    ICAM_CARDS / "cards" / "ICAM_CA_and_Signer" / "crls" / "ICAMTestCardGen3SigningCA.crl"
)


def card_cert(card: str, slot: str) -> bytes:
    path = ICAM_CARDS / "cards" / card / f"{CERTIFICATE_FILES[slot]}.crt"
    return load_certificate(path).public_bytes(Encoding.DER)


def carried_in(tmp_path: Path, crls: list[Path]) -> Path:
    """A CRL directory as an operator fills it by hand."""
    directory = tmp_path / "crls"
    directory.mkdir()
    for i, crl in enumerate(crls):
        shutil.copy(crl, directory / f"{i:02d}-{crl.name}")
    return directory


def test_mirrors_rewrite_at_a_path_boundary_whatever_the_host_case() -> None:
    mirrors = Mirrors({"http://ocspGen3.example.gov": "http://127.0.0.1:9/ocspGen3/"})
    assert mirrors("http://ocspgen3.example.gov") == "http://127.0.0.1:9/ocspGen3"
    assert mirrors("http://OCSPGEN3.example.gov/a/B.crl") == "http://127.0.0.1:9/ocspGen3/a/B.crl"
    assert mirrors("http://ocspgen3.example.gov.evil/x") == "http://ocspgen3.example.gov.evil/x"
    assert mirrors("http://other.example.gov/x") == "http://other.example.gov/x"


def test_policy_oids_are_a_setting_with_the_common_policy_by_default() -> None:
    assert Settings().certificate_policies == {
        "piv_auth": [oids.POLICY_PIV_AUTH],
        "card_auth": [oids.POLICY_CARD_AUTH],
        "content_signing": [oids.POLICY_PIV_CONTENT_SIGNING],
    }
    with pytest.raises(SettingsError, match="not an OID"):
        Settings(certificate_policies={"piv_auth": ["2.16.840.1.101.3.2.1.3.x"]})
    with pytest.raises(SettingsError, match="names no policy"):
        Settings(certificate_policies={"card_auth": []})
    with pytest.raises(SettingsError, match="not an http"):
        Settings(revocation_mirrors={"ldap://x": "http://y"})


@icam
async def test_the_icam_cards_are_refused_under_the_common_policy_and_accepted_by_setting(
    tmp_path: Path,
) -> None:
    crls = carried_in(tmp_path, revocation_crls())
    common = Settings(
        trust_anchors=TRUST_ANCHORS, intermediates=offline_intermediates(), crl_directory=crls
    )
    for settings, expected in (
        (common, "policy"),
        (common.model_copy(update={"certificate_policies": ICAM_POLICIES}), None),
    ):
        validator, store = build_validator(settings)
        async with store:
            try:
                await validator.validate(card_cert("46_Golden_FIPS_201-2_PIV", "9e"), CARD_AUTH)
                code = None
            except ValidationError as exc:
                code = exc.code
        assert code == expected


@icam
def test_crl_import_keeps_one_crl_per_ca_and_never_rolls_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "crls"
    assert main(["crl", "import", "--directory", str(directory), str(WITH_REVOCATIONS)]) == 0
    assert "imported CN=ICAM Test Card Signing CA" in capsys.readouterr().out
    assert main(["crl", "import", "--directory", str(directory), str(WITH_REVOCATIONS)]) == 0
    assert "already held" in capsys.readouterr().out
    assert main(["crl", "import", "--directory", str(directory), str(REISSUED_EMPTY)]) == 0
    assert "replaced an older CRL" in capsys.readouterr().out
    assert main(["crl", "import", "--directory", str(directory), str(WITH_REVOCATIONS)]) == 1
    assert "NOT imported, older" in capsys.readouterr().out
    not_a_crl = tmp_path / "x.crl"
    not_a_crl.write_bytes(b"nonsense")
    assert main(["crl", "import", "--directory", str(directory), str(not_a_crl)]) == 1
    assert "not a DER or PEM CRL" in capsys.readouterr().err
    assert len(list(directory.iterdir())) == 1


@icam
async def test_a_watched_directory_revokes_a_card_once_its_crl_is_imported(
    tmp_path: Path,
) -> None:
    directory = carried_in(tmp_path, [p for p in revocation_crls() if p != WITH_REVOCATIONS])
    assert main(["crl", "import", "--directory", str(directory), str(REISSUED_EMPTY)]) == 0
    settings = Settings(
        trust_anchors=TRUST_ANCHORS,
        intermediates=offline_intermediates(),
        certificate_policies=ICAM_POLICIES,
        crl_directory=directory,
        revocation_ocsp="never",
    )
    validator, store = build_validator(settings)
    store.directory_refresh = timedelta(milliseconds=50)  # crl_refresh_seconds, shortened
    revoked_card = card_cert("58_Revoked_Card_Auth_Cert", "9e")
    async with store:
        good = await validator.validate(revoked_card, CARD_AUTH)
        assert good.revocation_source == "crl"
        assert validator.cached == 1
        imported = ["crl", "import", "--force", "--directory", str(directory)]
        assert main([*imported, str(WITH_REVOCATIONS)]) == 0
        # The running store reads the directory again by itself; the new CRL evicts the
        # cached result, and the next validation refuses the card.
        for _ in range(100):
            if validator.cached == 0:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(ValidationError) as refused:
            await validator.validate(revoked_card, CARD_AUTH)
    assert refused.value.code == "revoked"


@pytest.fixture
async def repository() -> AsyncIterator[IcamRepositoryServer]:
    if ICAM_MISSING is not None:
        pytest.skip(ICAM_MISSING)
    async with IcamRepositoryServer(IcamRepository.load(ICAM_CARDS), free_port()) as server:
        yield server


async def test_an_isolated_site_fetches_nothing_and_goes_by_its_crl_files(
    repository: IcamRepositoryServer, tmp_path: Path
) -> None:
    # The repository is reachable through the mirrors, so anything tried would show in its
    # request log; with revocation_fetching off nothing is, and the CRL files decide.
    settings = online(
        repository,
        crl_directory=carried_in(tmp_path, revocation_crls()),
        revocation_fetching=False,
        aia_fetching=False,
    ).model_copy(update={"intermediates": offline_intermediates()})
    validator, store = build_validator(settings)
    async with store:
        assert await validate(validator, "46_Golden_FIPS_201-2_PIV") == "ok:crl"
        assert await validate(validator, "58_Revoked_Card_Auth_Cert") == "revoked"
    assert not repository.requests, repository.requests
    assert (store.stats.crl_fetches, store.stats.ocsp_fetches, store.stats.failures) == (0, 0, 0)


def online(server: IcamRepositoryServer, **extra: object) -> Settings:
    return Settings(
        trust_anchors=TRUST_ANCHORS,
        intermediates=[CARD_24_CA],
        certificate_policies=ICAM_POLICIES,
        revocation_mirrors=server.mirrors(),
        **extra,  # type: ignore[arg-type]
    )


async def validate(validator: CertificateValidator, card: str, slot: str = "9e") -> str:
    try:
        result = await validator.validate(
            card_cert(card, slot), CARD_AUTH if slot == "9e" else PIV_AUTH
        )
    except ValidationError as exc:
        return exc.code
    return f"ok:{result.revocation_source}"


async def test_issuers_come_from_aia_through_the_mirror_and_are_fetched_once(
    repository: IcamRepositoryServer,
) -> None:
    validator, store = build_validator(online(repository, revocation_ocsp="never"))
    async with store:
        assert await validate(validator, "46_Golden_FIPS_201-2_PIV") == "ok:crl"
        assert await validate(validator, "46_Golden_FIPS_201-2_PIV", "9a") == "ok:crl"
    fetched = [p for p in repository.requests if "/aia/" in p]
    assert fetched and all(repository.requests[p] == 1 for p in fetched)
    validator, store = build_validator(
        online(repository, revocation_ocsp="never", aia_fetching=False)
    )
    async with store:
        assert await validate(validator, "46_Golden_FIPS_201-2_PIV") == "untrusted"


@pytest.mark.parametrize(
    ("card", "expected", "which_check"),
    [
        ("46_Golden_FIPS_201-2_PIV", "ok:ocsp", ""),
        ("58_Revoked_Card_Auth_Cert", "revoked", ""),
        ("42_OCSP_Expired", "ocsp_responder", "expired on 20"),
        # ocsp-nocheck spares fetching the responder's revocation status, not knowing it:
        # the CRL that came with the answer lists the responder revoked.
        ("43_OCSP_revoked_w_nocheck", "ocsp_responder", "is revoked by its CA's CRL"),
        ("44_OCSP_revoked_wo_nocheck", "ocsp_responder", "is revoked (CRL from "),
        ("45_OCSP_Invalid_Signature", "ocsp_responder", "does not carry a valid signature"),
    ],
)
async def test_ocsp_answers_stand_or_fall_with_their_responder(
    repository: IcamRepositoryServer, card: str, expected: str, which_check: str
) -> None:
    validator, store = build_validator(online(repository, revocation_ocsp="always"))
    async with store:
        assert await validate(validator, card) == expected
        if expected == "ocsp_responder":
            # The refusal says which of the responder's checks failed.
            with pytest.raises(ValidationError) as refused:
                await validator.validate(card_cert(card, "9e"), CARD_AUTH)
            assert which_check in str(refused.value), str(refused.value)
            # The CRL alone would have said good: the refusal is the responder's.
            crl_only, crl_store = build_validator(online(repository, revocation_ocsp="never"))
            async with crl_store:
                assert await validate(crl_only, card) == "ok:crl"


@icam
async def test_aia_answers_are_cached_and_a_failed_url_is_retried_later() -> None:
    bundle = (
        ICAM_CARDS
        / "cards"
        / "ICAM_CA_and_Signer"
        / "aia"
        / "certsIssuedToICAMTestCardSigningCA.p7c"
    ).read_bytes()
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    answers: list[bytes | None] = [None, bundle]
    asked: list[str] = []

    async def fetch(url: str) -> bytes:
        asked.append(url)
        answer = answers.pop(0) if answers else bundle
        if answer is None:
            raise OSError("repository down")
        return answer

    aia = AiaIssuers(fetch, lifetime=timedelta(hours=1), clock=lambda: now[0])
    leaf = load_certificate(
        ICAM_CARDS / "cards" / "46_Golden_FIPS_201-2_PIV" / f"{CERTIFICATE_FILES['9e']}.crt"
    )
    url = ca_issuers_urls(leaf)[0]
    assert await aia.issuers(leaf) == []  # down: nothing, and no retry at once
    assert await aia.issuers(leaf) == []
    assert asked.count(url) == 1
    now[0] += RETRY_FAILED
    found = await aia.issuers(leaf)
    assert any(c.subject == leaf.issuer for c in found)
    assert asked.count(url) == 2
    now[0] += timedelta(minutes=59)
    assert await aia.issuers(leaf) == found and asked.count(url) == 2  # within its lifetime


async def test_without_the_crl_that_revokes_it_a_nocheck_responder_is_taken_at_its_word(
    repository: IcamRepositoryServer,
) -> None:
    # The CRL that lists the revoked responder cannot be had: RFC 6960 lets a client take a
    # responder with id-pkix-ocsp-nocheck on its word, and accessd does (compare the same
    # card refused when that CRL is at hand, above).
    del repository.repository.crls["ICAMTestCardGen3SigningCA.crl"]
    validator, store = build_validator(online(repository, revocation_ocsp="always"))
    async with store:
        assert await validate(validator, "43_OCSP_revoked_w_nocheck") == "ok:ocsp"
