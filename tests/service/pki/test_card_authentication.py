"""Door decisions resting on real challenge-responses: a virtual PIV card signs accessd's
challenge, the certificate is path-validated with revocation against the test PKI served on
loopback, a signed biometric result adds the third factor, and every refusal says why."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.authn.challenges import ChallengeBook
from accessd.authn.errors import ChallengeRejected
from accessd.authn.proofs import bio_message, pin_message
from accessd.events import EventBus
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from simulators.loopback import LoopbackTransport
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial, PkiServer, TestPki
from tests.conftest import Operators
from tests.helpers import ok, problem
from tests.piv_helpers import b64, fingerprint, issue_piv_credential, piv_service

POLICY = """\
version: 1
groups:
  - name: staff
    members: [E1]
facilities:
  - code: HQ
    name: Headquarters
    timezone: America/New_York
    security_level: 4
    areas:
      - name: Lobby
        class: controlled
        escort: {required: false}
        areas:
          - name: Offices
            class: limited
            escort: {required: false}
            areas:
              - name: Vault
                class: exclusion
                escort: {required: false}
    doors:
      - name: Main entrance
        into: Lobby
        accepts: [pki_cak, pki_auth]
        readers: [{name: Main in, direction: in, contactless: true}]
      - name: Office door
        into: Offices
        from: Lobby
        accepts: [pki_auth]
        readers: [{name: Office in, direction: in, contact: true, pin_pad: true}]
      - name: Vault door
        into: Vault
        from: Offices
        accepts: [pki_auth, bio]
        readers: [{name: Vault in, direction: in, contact: true, pin_pad: true, biometric: true}]
access_levels:
  - name: Staff
    doors: [HQ/Main entrance, HQ/Office door, HQ/Vault door]
    groups: [staff]
"""


# --- challenges on their own ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_challenge_is_good_once_for_its_reader_and_only_while_fresh() -> None:
    clock = Clock()
    book = ChallengeBook(b"k" * 32, ttl=30, clock=clock)
    first = book.issue(7)
    assert len(first.value) == 45 and first.expires_at == clock.now + 30
    with pytest.raises(ChallengeRejected) as wrong:
        book.consume(first.value, 8)
    assert wrong.value.code == "challenge_wrong_reader"
    book.consume(first.value, 7)
    with pytest.raises(ChallengeRejected) as again:
        book.consume(first.value, 7)
    assert again.value.code == "challenge_replayed"
    late = book.issue(7)
    clock.now += 30.5
    with pytest.raises(ChallengeRejected) as expired:
        book.consume(late.value, 7)
    assert expired.value.code == "challenge_expired"
    forged = bytearray(book.issue(7).value)
    forged[10] ^= 1
    with pytest.raises(ChallengeRejected) as bad:
        book.consume(bytes(forged), 7)
    assert bad.value.code == "challenge_forged"
    other_service = ChallengeBook(b"x" * 32, clock=clock).issue(7)
    with pytest.raises(ChallengeRejected) as stranger:
        book.consume(other_service.value, 7)
    assert stranger.value.code == "challenge_forged"
    with pytest.raises(ChallengeRejected) as short:
        book.consume(b"\x01" * 10, 7)
    assert short.value.code == "challenge_malformed"
    assert book.rejected == {
        "challenge_wrong_reader": 1,
        "challenge_replayed": 1,
        "challenge_expired": 1,
        "challenge_forged": 2,
        "challenge_malformed": 1,
    }


def test_consumed_challenges_are_forgotten_once_expired() -> None:
    clock = Clock()
    book = ChallengeBook(ttl=10, clock=clock)
    for _ in range(100):
        book.consume(book.issue(1).value, 1)
    assert book.outstanding == 100
    clock.now += 11
    book.consume(book.issue(1).value, 1)
    assert book.outstanding == 1


def test_random_challenges_differ() -> None:
    book = ChallengeBook()
    assert len({book.issue(1).value for _ in range(1000)}) == 1000


# --- through the API ---------------------------------------------------------------------


@dataclass
class Site:
    client: httpx.AsyncClient
    pki: TestPki
    server: PkiServer
    reader_hdr: dict[str, str]
    fm_hdr: dict[str, str]
    auditor_hdr: dict[str, str]
    readers: dict[str, int]
    card: CardMaterial
    person: dict[str, Any]
    cred: dict[str, Any]
    state: Any


@pytest.fixture
async def site(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
) -> AsyncIterator[Site]:
    async with piv_service(db_url, engine, bus, tmp_path) as svc:
        client, pki, server, app = svc.client, svc.pki, svc.server, svc.app
        card = pki.issue_card(algorithms={"9a": "rsa2048", "9e": "p256"})
        person, cred = await issue_piv_credential(client, ops, "E1", card)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        state = app.state.accessd
        await state.decisions.refresh()
        fm = await ops.headers("facility_manager")
        listed = ok(await client.get("/v1/readers", headers=fm))
        yield Site(
            client,
            pki,
            server,
            # An auditor too: these tests read why a proof failed in the reply's trail, which
            # a plain door_reader account is not given.
            await ops.headers("door_reader", "auditor", readers=[r["id"] for r in listed["items"]]),
            fm,
            await ops.headers("auditor"),
            {r["name"]: r["id"] for r in listed["items"]},
            card,
            person,
            cred,
            state,
        )


async def challenge(site: Site, reader: int) -> bytes:
    answer = ok(
        await site.client.post(
            "/v1/challenges", json={"reader_id": reader}, headers=site.reader_hdr
        ),
        201,
    )
    return base64.b64decode(answer["challenge"])


async def present(
    site: Site,
    reader: str,
    card: CardMaterial,
    *,
    slot: str = "9e",
    pin: str | None = None,
    nonce: bytes | None = None,
    extra: dict[str, Any] | None = None,
    tamper: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card at the reader: challenge from accessd, signed on the card, decision."""
    reader_id = site.readers[reader]
    nonce = nonce if nonce is not None else await challenge(site, reader_id)
    piv = PivCard(LoopbackTransport(VirtualPivCard(card)))
    await piv.select()
    cert = await piv.read_certificate(slot)
    if pin is not None:
        await piv.verify_pin(pin)
    signature = await sign_challenge(piv, slot, cert, nonce)
    if tamper:
        signature = signature[:-1] + bytes((signature[-1] ^ 1,))
    body: dict[str, Any] = {
        "reader_id": reader_id,
        "proof": {
            "mechanism": "pki_cak" if slot == "9e" else "pki_auth",
            "challenge": b64(nonce),
            "certificate": b64(cert.public_bytes(serialization.Encoding.DER)),
            "signature": b64(signature),
        },
        **(extra or {}),
    }
    answer = ok(await site.client.post("/v1/decisions", json=body, headers=site.reader_hdr))
    return answer, body


async def test_pki_cak_opens_the_lobby_and_is_not_enough_for_the_offices(site: Site) -> None:
    granted, _ = await present(site, "Main in", site.card)
    assert (granted["granted"], granted["reason"]) == (True, "granted"), granted
    assert granted["credential_id"] == site.cred["id"]
    # The trail names what the proof established and the revocation source really used.
    assert any(
        "card authenticated: pki_cak by card_auth certificate" in line
        and "revocation checked by crl" in line
        for line in granted["trail"]
    ), granted["trail"]
    office, _ = await present(site, "Office in", site.card)
    assert (office["granted"], office["reason"], office["required"]) == (
        False,
        "factors_missing",
        ["pin"],
    )


async def test_pki_auth_after_the_pin_opens_the_offices(site: Site) -> None:
    answer, _ = await present(site, "Office in", site.card, slot="9a", pin="123456")
    assert answer["granted"], answer


async def test_a_replayed_answer_is_refused_and_stored_as_such(site: Site) -> None:
    first, body = await present(site, "Main in", site.card)
    assert first["granted"]
    again = ok(await site.client.post("/v1/decisions", json=body, headers=site.reader_hdr))
    assert (again["granted"], again["reason"]) == (False, "authentication_failed")
    assert any("challenge_replayed" in line for line in again["trail"]), again["trail"]
    await site.state.decisions.store.flush()
    stored = ok(
        await site.client.get(
            "/v1/decisions", headers=site.auditor_hdr, params={"granted": "false"}
        )
    )
    assert [e["reason"] for e in stored["items"]] == ["authentication_failed"]


async def test_a_forged_signature_a_foreign_challenge_and_another_readers_are_refused(
    site: Site,
) -> None:
    forged, _ = await present(site, "Main in", site.card, tamper=True)
    assert forged["reason"] == "authentication_failed"
    assert any("bad_signature" in line for line in forged["trail"])
    foreign = ChallengeBook().issue(site.readers["Main in"]).value
    stranger, _ = await present(site, "Main in", site.card, nonce=foreign)
    assert any("challenge_forged" in line for line in stranger["trail"])
    for_office = await challenge(site, site.readers["Office in"])
    moved, _ = await present(site, "Main in", site.card, nonce=for_office)
    assert any("challenge_wrong_reader" in line for line in moved["trail"])


@pytest.mark.parametrize(
    ("variant", "code"),
    [
        ("revoked", "revoked"),
        ("expired", "expired"),
        ("wrong_issuer", "untrusted"),
    ],
)
async def test_bad_cards_are_refused_saying_why(site: Site, variant: str, code: str) -> None:
    card = site.pki.issue_card(variant=variant, algorithms={"9a": "p256", "9e": "p256"})  # type: ignore[arg-type]
    answer, _ = await present(site, "Main in", card)
    assert (answer["granted"], answer["reason"]) == (False, "authentication_failed")
    assert any(f"{code}:" in line for line in answer["trail"]), answer["trail"]


async def test_a_9a_certificate_is_no_card_authentication(site: Site) -> None:
    piv = PivCard(LoopbackTransport(VirtualPivCard(site.card)))
    await piv.select()
    cert = await piv.read_certificate("9a")
    nonce = await challenge(site, site.readers["Main in"])
    await piv.verify_pin("123456")
    signature = await sign_challenge(piv, "9a", cert, nonce)
    body = {
        "reader_id": site.readers["Main in"],
        "proof": {
            "mechanism": "pki_cak",
            "challenge": b64(nonce),
            "certificate": b64(cert.public_bytes(serialization.Encoding.DER)),
            "signature": b64(signature),
        },
    }
    answer = ok(await site.client.post("/v1/decisions", json=body, headers=site.reader_hdr))
    assert answer["reason"] == "authentication_failed"
    assert any("policy:" in line or "usage:" in line for line in answer["trail"]), answer


async def test_a_card_revoked_after_a_warm_grant_is_refused_on_the_next_refresh(
    site: Site,
) -> None:
    assert (await present(site, "Main in", site.card))[0]["granted"]
    site.pki.revoke(site.card.certificates["9e"])
    validator = site.state.authn._validator
    await validator._store.refresh()
    answer, _ = await present(site, "Main in", site.card)
    assert answer["reason"] == "authentication_failed"
    assert any("revoked:" in line for line in answer["trail"]), answer["trail"]


async def test_the_reader_identifier_must_match_the_proven_certificate(site: Site) -> None:
    other = site.pki.issue_card()
    answer, _ = await present(
        site,
        "Main in",
        site.card,
        extra={"credential": {"kind": "card_uuid", "value": other.card_uuid}},
    )
    assert answer["reason"] == "authentication_failed"
    assert any("credential_mismatch" in line for line in answer["trail"])
    same, _ = await present(
        site,
        "Main in",
        site.card,
        extra={"credential": {"kind": "fasc_n", "value": site.card.fascn.hex().upper()}},
    )
    assert same["granted"], same


async def test_proofs_replace_what_a_reader_merely_claims(site: Site) -> None:
    # Claimed pki_auth next to a proven pki_cak does not make two factors.
    answer, _ = await present(site, "Office in", site.card, extra={"evidence": ["pki_auth"]})
    assert (answer["granted"], answer["required"]) == (False, ["pin"])
    # Nor does the reader's word that the card checked the PIN (a signed claim does: below).
    pin, _ = await present(site, "Office in", site.card, extra={"evidence": ["pin"]})
    assert (pin["granted"], pin["required"]) == (False, ["pin"]), pin


async def test_an_unsigned_pin_claim_is_no_factor_a_signed_one_is_a_badly_signed_one_refused(
    site: Site,
) -> None:
    office = site.readers["Office in"]
    attestation = ec.generate_private_key(ec.SECP256R1())

    async def with_pin(key: ec.EllipticCurvePrivateKey, sign_for: bytes | None = None) -> Any:
        nonce = await challenge(site, office)
        message = pin_message(sign_for or nonce, fingerprint(site.card, "9e"))
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
        answer, _ = await present(
            site,
            "Office in",
            site.card,
            nonce=nonce,
            extra={"evidence": ["pin"], "pin": {"signature": b64(signature)}},
        )
        return answer

    unsigned, _ = await present(site, "Office in", site.card, extra={"evidence": ["pin"]})
    assert (unsigned["granted"], unsigned["reason"], unsigned["required"]) == (
        False,
        "factors_missing",
        ["pin"],
    )
    # A reader with no attestation key cannot vouch for a PIN at all.
    unattested = await with_pin(attestation)
    assert unattested["reason"] == "authentication_failed"
    assert any("pin_unattested" in line for line in unattested["trail"]), unattested

    pem = (
        attestation.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    reader = ok(await site.client.get(f"/v1/readers/{office}", headers=site.fm_hdr))
    ok(
        await site.client.patch(
            f"/v1/readers/{office}",
            json={"attestation_key": pem},
            headers=site.fm_hdr | {"If-Match": f'"{reader["version"]}"'},
        )
    )
    site.state.authn._reader_keys.forget()

    signed = await with_pin(attestation)
    assert signed["granted"], signed
    assert any("pin, pki_cak by card_auth certificate" in line for line in signed["trail"])
    other_presentation = await with_pin(attestation, sign_for=b"another presentation")
    assert other_presentation["reason"] == "authentication_failed"
    assert any("pin_bad_signature" in line for line in other_presentation["trail"])
    another_key = await with_pin(ec.generate_private_key(ec.SECP256R1()))
    assert another_key["reason"] == "authentication_failed"
    assert any("pin_bad_signature" in line for line in another_key["trail"])
    assert site.state.authn.rejected["pin_bad_signature"] == 2


async def test_a_pin_claim_without_a_proof_is_a_clear_error(site: Site) -> None:
    body = {
        "reader_id": site.readers["Office in"],
        "credential": {"kind": "card_uuid", "value": site.card.card_uuid},
        "pin": {"signature": "AAAA"},
    }
    problem(await site.client.post("/v1/decisions", json=body, headers=site.reader_hdr), 422)


async def test_a_signed_biometric_match_is_the_third_factor(site: Site) -> None:
    vault = site.readers["Vault in"]
    attestation = ec.generate_private_key(ec.SECP256R1())
    pem = (
        attestation.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    without_key, _ = await present(
        site,
        "Vault in",
        site.card,
        slot="9a",
        pin="123456",
        extra={"bio": {"matched": True, "score": 900, "signature": b64(b"x" * 64)}},
    )
    assert any("bio_unattested" in line for line in without_key["trail"])

    reader = ok(await site.client.get(f"/v1/readers/{vault}", headers=site.fm_hdr))
    headers = site.fm_hdr | {"If-Match": f'"{reader["version"]}"'}
    ok(
        await site.client.patch(
            f"/v1/readers/{vault}", json={"attestation_key": pem}, headers=headers
        )
    )
    site.state.authn._reader_keys.forget()

    async def with_bio(matched: bool, sign_for: bytes | None = None) -> dict[str, Any]:
        nonce = await challenge(site, vault)
        message = bio_message(sign_for or nonce, fingerprint(site.card, "9a"), matched, 900)
        signature = attestation.sign(message, ec.ECDSA(hashes.SHA256()))
        answer, _ = await present(
            site,
            "Vault in",
            site.card,
            slot="9a",
            pin="123456",
            nonce=nonce,
            extra={"bio": {"matched": matched, "score": 900, "signature": b64(signature)}},
        )
        return answer

    assert (await with_bio(True))["granted"]
    no_match = await with_bio(False)
    assert any("bio_no_match" in line for line in no_match["trail"])
    stale = await with_bio(True, sign_for=b"another presentation")
    assert any("bio_bad_signature" in line for line in stale["trail"])
    no_bio, _ = await present(site, "Vault in", site.card, slot="9a", pin="123456")
    assert (no_bio["granted"], no_bio["required"]) == (False, ["biometric"])


async def test_malformed_proofs_are_clear_errors(site: Site) -> None:
    reader = site.readers["Main in"]
    bad = [
        {"reader_id": reader},
        {"reader_id": reader, "bio": {"matched": True, "score": 1, "signature": "AAAA"}},
        {
            "reader_id": reader,
            "proof": {
                "mechanism": "chuid",
                "challenge": "AAAA",
                "certificate": "AAAA",
                "signature": "AAAA",
            },
        },
        {
            "reader_id": reader,
            "proof": {
                "mechanism": "pki_cak",
                "challenge": "not base64!",
                "certificate": "AAAA",
                "signature": "AAAA",
            },
        },
    ]
    for body in bad:
        problem(await site.client.post("/v1/decisions", json=body, headers=site.reader_hdr), 422)
    garbage = {
        "reader_id": reader,
        "proof": {
            "mechanism": "pki_cak",
            "challenge": b64(await challenge(site, reader)),
            "certificate": b64(b"\x30\x03\x02\x01\x00"),
            "signature": "AAAA",
        },
    }
    answer = ok(await site.client.post("/v1/decisions", json=garbage, headers=site.reader_hdr))
    assert any("certificate_malformed" in line for line in answer["trail"])
    assert site.state.authn.rejected["certificate_malformed"] == 1
