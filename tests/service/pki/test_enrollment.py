"""The enrollment station: a PIV card is read, validated and bound to the person's waiting
credential, over the API (an in-process virtual card) and with `accessd enroll` on a real
pcscd; every bad card is refused saying exactly why, and nothing is written for it."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.config import Settings
from accessd.events import EventBus
from accessd.models import AuditEntry
from drivers.piv import objects, tlv
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from simulators.loopback import LoopbackTransport
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial, TestPki
from simulators.vpcd import VirtualReaderSlot
from tests.conftest import PASSWORD, Operators
from tests.drivers.piv.test_piv_vpcd import _SKIP as PCSC_MISSING  # the PC/SC tests' own probe
from tests.helpers import TODAY, adjudicate, make_person, ok, problem, sponsor
from tests.piv_helpers import b64, fingerprint, piv_service


@dataclass
class Station:
    client: httpx.AsyncClient
    pki: TestPki
    registrar: dict[str, str]
    sponsor: dict[str, str]
    ops: Operators
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings


@pytest.fixture
async def station(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
) -> AsyncIterator[Station]:
    async with piv_service(db_url, engine, bus, tmp_path) as svc:
        client, pki, settings = svc.client, svc.pki, svc.settings
        yield Station(
            client,
            pki,
            await ops.headers("registrar"),
            await ops.headers("sponsor"),
            ops,
            sessions,
            settings,
        )


async def waiting_person(st: Station, external_id: str = "E1") -> tuple[int, dict[str, Any]]:
    """A person with a favorable adjudication and a PIV credential awaiting a card."""
    person = await make_person(st.client, st.registrar, external_id=external_id)
    await adjudicate(st.client, await st.ops.headers("adjudicator"), person["id"])
    cred = await sponsor(st.client, st.sponsor, person["id"], days=6 * 365)
    return person["id"], cred


async def read_at_station(
    st: Station,
    card: CardMaterial,
    *,
    pin: str | None = None,
    sign_with: CardMaterial | None = None,
) -> dict[str, Any]:
    """What a station client sends: the card's objects and its answers to our challenges.
    ``sign_with`` answers with another card's keys (a copied certificate)."""
    piv = PivCard(LoopbackTransport(VirtualPivCard(card)))
    await piv.select()
    chuid = tlv.encode(objects.CONTAINER, await piv.get_data(objects.CHUID))
    certs = {s: await piv.read_certificate_der(s) for s in ("9a", "9e")}
    signer = PivCard(LoopbackTransport(VirtualPivCard(sign_with or card)))
    await signer.select()
    proofs = []
    for slot, mechanism in (("9e", "pki_cak"), *((("9a", "pki_auth"),) if pin else ())):
        answer = ok(
            await st.client.post("/v1/challenges", json={"reader_id": 0}, headers=st.registrar),
            201,
        )
        nonce = base64.b64decode(answer["challenge"])
        if slot == "9a":
            await signer.verify_pin(pin or "")
        cert = await piv.read_certificate(slot)
        signature = await sign_challenge(signer, slot, cert, nonce)
        proofs.append(
            {"mechanism": mechanism, "challenge": b64(nonce), "signature": b64(signature)}
        )
    return {
        "chuid": b64(chuid),
        "certificates": {s: b64(d) for s, d in certs.items()},
        "proofs": proofs,
        "security_object": b64(await piv.read_security_object()),
    }


async def enroll(st: Station, person_id: int, card: dict[str, Any], **extra: Any) -> httpx.Response:
    body = {"person_id": person_id, "card": card, **extra}
    return await st.client.post("/v1/enrollments", json=body, headers=st.registrar)


async def test_a_good_card_is_bound_to_the_waiting_credential_and_opens_a_door(
    station: Station,
) -> None:
    person_id, cred = await waiting_person(station)
    card = station.pki.issue_card(algorithms={"9a": "rsa2048", "9e": "p384"}, name="Ana Lima")
    answer = ok(
        await enroll(station, person_id, await read_at_station(station, card, pin="123456"))
    )
    identity, bound = answer["identity"], answer["credential"]
    assert identity["holder"] == "Ana Lima"
    assert identity["proven"] == ["pki_auth", "pki_cak"]
    assert identity["checked"] == ["security object: signature, signer; data groups 1 match"]
    assert identity["fasc_n"] == card.fascn.redacted()  # never the whole FASC-N
    assert {c["slot"]: c["revocation_source"] for c in identity["certificates"]} == {
        "9a": "crl",
        "9e": "crl",
    }
    assert bound["id"] == cred["id"] and bound["state"] == "enrolled"
    assert bound["fasc_n"] == card.fascn.hex() and bound["card_uuid"] == card.card_uuid
    assert {c["slot"]: c["sha256"] for c in bound["certificates"]} == {
        "9a": fingerprint(card, "9a"),
        "9e": fingerprint(card, "9e"),
    }
    assert bound["valid_until"] == identity["valid_until"] <= cred["valid_until"]
    async with station.sessions() as s:
        actions = list(
            await s.scalars(
                select(AuditEntry.action).where(AuditEntry.entity_id == str(cred["id"]))
            )
        )
    assert "credential.card_enrolled" in actions
    again = await enroll(station, person_id, await read_at_station(station, card))
    assert problem(again, 409)["code"] == "card_registered"


@pytest.mark.parametrize(
    ("variant", "code", "words"),
    [
        ("expired", "expired", "expired"),
        ("revoked", "revoked", "revoked"),
        ("wrong_issuer", "untrusted", ""),
        ("tampered_chuid", "chuid_signature", "digest"),
    ],
)
async def test_bad_cards_are_refused_saying_why_and_nothing_is_written(
    station: Station, variant: str, code: str, words: str
) -> None:
    person_id, cred = await waiting_person(station)
    card = station.pki.issue_card(variant=variant)  # type: ignore[arg-type]
    refused = problem(await enroll(station, person_id, await read_at_station(station, card)), 422)
    assert refused["code"] == code, refused
    assert words in refused["detail"].lower()
    after = ok(await station.client.get(f"/v1/credentials/{cred['id']}", headers=station.registrar))
    assert (after["state"], after["fasc_n"], after["certificates"]) == ("requested", None, [])


async def test_copied_certificates_without_the_key_are_refused(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    genuine, clone = station.pki.issue_card(), station.pki.issue_card()
    reading = await read_at_station(station, genuine, sign_with=clone)
    refused = problem(await enroll(station, person_id, reading), 422)
    assert refused["code"] == "bad_signature", refused


async def test_a_chuid_and_certificates_of_different_cards_are_refused(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    one, other = station.pki.issue_card(), station.pki.issue_card()
    reading = await read_at_station(station, one)
    reading["chuid"] = b64(other.chuid)
    refused = problem(await enroll(station, person_id, reading), 422)
    assert refused["code"] == "fascn_mismatch", refused


async def test_a_card_without_its_security_object_is_refused(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    reading = await read_at_station(station, station.pki.issue_card())
    del reading["security_object"]
    refused = problem(await enroll(station, person_id, reading), 422)
    assert refused["code"] == "security_object_missing", refused


async def test_a_site_that_does_not_require_the_security_object_enrolls_without_it(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
) -> None:
    async with piv_service(db_url, engine, bus, tmp_path, require_security_object=False) as svc:
        st = Station(
            svc.client,
            svc.pki,
            await ops.headers("registrar"),
            await ops.headers("sponsor"),
            ops,
            sessions,
            svc.settings,
        )
        person_id, cred = await waiting_person(st)
        reading = await read_at_station(st, st.pki.issue_card())
        del reading["security_object"]
        enrolled = ok(await enroll(st, person_id, reading))
        assert enrolled["credential"]["id"] == cred["id"], enrolled


async def test_another_cards_security_object_is_refused_by_its_hashes(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    one, other = station.pki.issue_card(), station.pki.issue_card()
    reading = await read_at_station(station, one)
    reading["security_object"] = (await read_at_station(station, other))["security_object"]
    refused = problem(await enroll(station, person_id, reading), 422)
    assert refused["code"] == "security_object_hash", refused
    assert "data group 1" in refused["detail"] and "CHUID" in refused["detail"]


async def test_a_dry_run_shows_the_card_and_whose_it_is_and_writes_nothing(
    station: Station,
) -> None:
    person_id, cred = await waiting_person(station)
    card = station.pki.issue_card()
    shown = ok(await enroll(station, person_id, await read_at_station(station, card), dry_run=True))
    assert shown["dry_run"] and shown["credential"] is None
    assert shown["identity"]["card_uuid"] == card.card_uuid
    ok(await enroll(station, person_id, await read_at_station(station, card)))
    known = ok(await enroll(station, person_id, await read_at_station(station, card), dry_run=True))
    assert known["credential"]["id"] == cred["id"]


async def test_without_a_waiting_credential_the_station_sends_you_to_a_sponsor(
    station: Station,
) -> None:
    person = await make_person(station.client, station.registrar, external_id="E9")
    reading = await read_at_station(station, station.pki.issue_card())
    refused = problem(await enroll(station, person["id"], reading), 409)
    assert refused["code"] == "no_pending_credential"


async def test_separation_of_duties_holds_at_the_station(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    _, own = await station.ops.make("registrar", person_id=person_id)
    reading = await read_at_station(station, station.pki.issue_card())
    body = {"person_id": person_id, "card": reading}
    refused = problem(await station.client.post("/v1/enrollments", json=body, headers=own), 409)
    assert refused["code"] == "self_dealing"
    door_reader = await station.ops.headers("door_reader")
    problem(await station.client.post("/v1/enrollments", json=body, headers=door_reader), 403)
    problem(
        await station.client.post("/v1/challenges", json={"reader_id": 0}, headers=door_reader),
        403,
    )


async def test_malformed_readings_are_clear_errors(station: Station) -> None:
    person_id, _ = await waiting_person(station)
    good = await read_at_station(station, station.pki.issue_card())
    cases = [
        {**good, "chuid": "not base64!"},
        {**good, "certificates": {"9z": good["certificates"]["9a"]}},
        {**good, "proofs": []},
        {**good, "certificates": {"9a": good["certificates"]["9a"]}},  # no 9E for pki_cak
    ]
    for card in cases:
        problem(await enroll(station, person_id, card), 422)
    garbage = {**good, "chuid": b64(b"\x53\x02\x30\x00")}
    assert problem(await enroll(station, person_id, garbage), 422)["code"] == "chuid_malformed"


# --- `accessd enroll` on a real PC/SC stack -------------------------------------------------

VPCD_PORT, VPCD_READER = 35964, "Virtual PCD 00 01"


async def _run_cli(
    settings: Settings, tmp: Path, *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    config = tmp / "accessd.toml"
    anchors = ", ".join(f'"{p}"' for p in settings.trust_anchors)
    inter = ", ".join(f'"{p}"' for p in settings.intermediates)
    config.write_text(
        f'database_url = "{settings.database_url}"\n'
        f"trust_anchors = [{anchors}]\nintermediates = [{inter}]\n"
    )
    env = {**os.environ, "ACCESSD_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "accessd",
        "--config",
        str(config),
        "enroll",
        "--reader",
        VPCD_READER,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.vpcd
async def test_accessd_enroll_reads_a_card_on_pcscd_and_refuses_a_revoked_one(
    station: Station, tmp_path: Path
) -> None:
    if PCSC_MISSING:
        pytest.skip(PCSC_MISSING)
    person_id, cred = await waiting_person(station)
    await station.ops.make("registrar", name="ana")
    good = station.pki.issue_card(name="Ana Lima")
    async with VirtualReaderSlot(VPCD_PORT, VirtualPivCard(good)):
        await asyncio.sleep(0.7)  # pcscd notices the card
        code, out, err = await _run_cli(station.settings, tmp_path, "--inspect")
        assert code == 0, err
        assert "Ana Lima" in out and "not yet" in out and good.fascn.hex() not in out + err
        code, out, err = await _run_cli(
            station.settings,
            tmp_path,
            "--person",
            str(person_id),
            "--operator",
            "ana",
            "--pin",
            "--secrets-stdin",
            stdin=f"{PASSWORD}\n123456\n",
        )
        assert code == 0, err
        assert f"credential {cred['id']}" in out and "enrolled" in out, out
        assert "pki_auth, pki_cak" in out
    await asyncio.sleep(0.6)
    bad = station.pki.issue_card(variant="revoked")
    async with VirtualReaderSlot(VPCD_PORT, VirtualPivCard(bad)):
        await asyncio.sleep(0.7)
        code, out, err = await _run_cli(station.settings, tmp_path, "--inspect")
    assert code == 3 and "refused: revoked:" in err, (out, err)
    await asyncio.sleep(0.6)
    wrong_pin = station.pki.issue_card()
    async with VirtualReaderSlot(VPCD_PORT, VirtualPivCard(wrong_pin)):
        await asyncio.sleep(0.7)
        code, out, err = await _run_cli(
            station.settings,
            tmp_path,
            "--person",
            str(person_id),
            "--operator",
            "ana",
            "--pin",
            "--secrets-stdin",
            stdin=f"{PASSWORD}\n000000\n",
        )
    assert code == 3 and "wrong PIN, 2 tries left" in err, (out, err)
    after = ok(await station.client.get(f"/v1/credentials/{cred['id']}", headers=station.registrar))
    assert after["fasc_n"] == good.fascn.hex()
    assert date.fromisoformat(after["valid_until"]) > TODAY + timedelta(days=365)
