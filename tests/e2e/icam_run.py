"""One conformance pass: every ICAM card read, inspected, enrolled and presented at a door.

A pass runs the whole service (app, SQLite database, the ICAM repository on loopback when
revocation comes over HTTP) and records what accessd answered at each step; the tests
compare those answers with `icam_expected.CARDS`.
"""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from accessd.api.app import create_app
from accessd.api.schemas.enrollment import CardReadingIn
from accessd.auth.passwords import hash_password
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.enrollment.errors import CardRefused
from accessd.enrollment.inspection import inspect
from accessd.enrollment.reading import OBJECT_IDS, CardReading, read_card
from accessd.errors import AccessdError
from accessd.events import EventBus, session_info
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from accessd.validation.crl_files import import_crl
from drivers.errors import DriverError
from drivers.piv.cardedge import PivCard
from drivers.piv.challenge import sign_challenge
from simulators.icam_card import PIN, icam_card
from simulators.icam_repository import IcamRepository, IcamRepositoryServer
from simulators.loopback import LoopbackTransport
from simulators.pki import free_port
from tests.conftest import PASSWORD, Operators
from tests.helpers import act, adjudicate, make_person, ok, sponsor
from tests.icam_expected import CARDS
from tests.icam_settings import (
    CARD_24_CA,
    ICAM_POLICIES,
    TRUST_ANCHORS,
    offline_intermediates,
    revocation_crls,
)
from tests.paths import ICAM_CARDS

_CHECKED_BY = re.compile(r"revocation checked by (\w+)")
Pass = Literal["http", "crl-files"]
PASSES: tuple[Pass, ...] = ("http", "crl-files")

POLICY = """\
version: 1
groups:
  - name: icam
    members: [{members}]
facilities:
  - code: LAB
    name: Conformance lab
    timezone: UTC
    security_level: 2
    areas:
      - name: Lobby
        class: controlled
        escort: {{required: false}}
    doors:
      - name: Entrance
        into: Lobby
        accepts: [pki_cak]
        readers: [{{name: Entrance in, direction: in, contactless: true}}]
access_levels:
  - name: ICAM cards
    doors: [LAB/Entrance]
    groups: [icam]
"""


@dataclass
class Answer:
    """What accessd answered for one card in one pass."""

    card: str
    read: str = "ok"  # or the driver error that stopped the reading
    inspection: str = "accepted"  # or the refusal's code
    detail: str = ""
    enrollment: str = "not tried"  # "enrolled" or the problem's code
    door: str = "not tried"  # "granted", or the reason and the trail's failing line
    revocation: str = ""  # the sources the accepted certificates were checked by
    door_revocation: str = ""  # the source the door's trail names for the 9E certificate

    @property
    def accepted(self) -> bool:
        return (self.read, self.inspection, self.enrollment, self.door) == (
            "ok",
            "accepted",
            "enrolled",
            "granted",
        )

    @property
    def code(self) -> str:
        """The reason accessd gave first (reading, then inspection, then enrollment)."""
        if self.read != "ok":
            return f"read:{self.read}"
        if self.inspection != "accepted":
            return self.inspection
        if self.enrollment != "enrolled":
            return self.enrollment
        return "" if self.door == "granted" else self.door


def external_id(card: str) -> str:
    """The card holder's id: the card's place in the set (folder numbers repeat)."""
    return f"ICAM-{list(CARDS).index(card):02d}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def station_body(reading: CardReading) -> dict[str, Any]:
    """What a station client sends for ``reading``: every object the API takes."""
    body: dict[str, Any] = {
        "chuid": _b64(reading.chuid),
        "certificates": {slot: _b64(der) for slot, der in reading.certificates.items()},
        "proofs": [
            {
                "mechanism": proof.mechanism.value,
                "challenge": _b64(proof.challenge),
                "signature": _b64(proof.signature),
            }
            for proof in reading.proofs
        ],
    }
    have = {f.name for f in fields(reading)}
    for name in CardReadingIn.model_fields:
        value = getattr(reading, name, None) if name in have else None
        if name not in body and isinstance(value, bytes):
            body[name] = _b64(value)
    body["absent"] = [name for name, oid in OBJECT_IDS.items() if oid in reading.absent]
    return body


@dataclass
class _Site:
    client: httpx.AsyncClient
    state: Any
    ops: Operators
    roles: dict[str, dict[str, str]]

    async def headers(self, role: str) -> dict[str, str]:
        if role not in self.roles:
            self.roles[role] = await self.ops.headers(role)
        return self.roles[role]


async def _template(directory: Path) -> Path:
    """A migrated SQLite database each card's service starts from."""
    path = directory / "template.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return path


def _settings(which: Pass, directory: Path, mirrors: dict[str, str]) -> Settings:
    common: dict[str, Any] = {
        "trust_anchors": TRUST_ANCHORS,
        "certificate_policies": ICAM_POLICIES,
    }
    if which == "http":
        # Issuers from AIA, revocation from the CRLs and OCSP responders, all on loopback.
        return Settings(
            **common,
            intermediates=[CARD_24_CA],
            revocation_mirrors=mirrors,
            revocation_ocsp="always",
        )
    crls = directory / "crls"
    for crl in revocation_crls():
        try:
            import_crl(crl, crls)
        except ValueError:
            continue  # the set's deliberately malformed CRLs
    return Settings(
        **common,
        intermediates=offline_intermediates(),
        crl_directory=crls,
        # An isolated site: nothing from the network, not even a DNS lookup of a CRL URL.
        revocation_fetching=False,
        aia_fetching=False,
    )


async def run_pass(which: Pass) -> dict[str, Answer]:
    """Every card of the set through accessd with revocation from ``which``.

    Each card meets a service of its own (a fresh database): the set's cards share
    FASC-Ns, UUIDs and even card-authentication keys, so a card enrolled before would
    answer for the next one at the door.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"icam-{which}-"))
    repository = IcamRepositoryServer(IcamRepository.load(ICAM_CARDS), free_port())
    try:
        async with repository:
            settings = _settings(which, directory, repository.mirrors())
            if which != "http":
                repository.online = False  # an isolated site: nothing may come over HTTP
            template = await _template(directory)
            password_hash = hash_password(PASSWORD)
            answers: dict[str, Answer] = {}
            for index, card in enumerate(CARDS):
                # A file of its own: SQLite's journal files of the last card stay behind.
                database = directory / f"card-{index:02d}.db"
                shutil.copyfile(template, database)
                url = f"sqlite+aiosqlite:///{database}"
                answers[card] = await _one_card(
                    settings.model_copy(update={"database_url": url}), card, password_hash
                )
            if which != "http":
                assert not repository.requests, f"fetched over HTTP: {dict(repository.requests)}"
            return answers
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _one_card(settings: Settings, card: str, password_hash: str) -> Answer:
    engine = make_engine(settings.database_url)
    bus = EventBus()
    sessions = make_sessionmaker(engine)
    sessions.configure(info=session_info(bus))
    app = create_app(settings, engine=engine, bus=bus)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://accessd.test"
            ) as client,
        ):
            site = _Site(client, app.state.accessd, Operators(sessions, password_hash), {})
            person_id, credential_id = await _person(site, card)
            async with sessions() as s:
                policy = POLICY.format(members=external_id(card))
                await versions.apply(s, "icam", policy_loader.parse(policy, "icam.yaml"))
                await s.commit()
            answer = await _enroll(site, card, person_id, credential_id)
            await site.state.decisions.refresh()
            managers = await site.headers("facility_manager")
            readers = ok(await client.get("/v1/readers", headers=managers))
            answer.door, answer.door_revocation = await _door(site, card, readers["items"][0]["id"])
            return answer
    finally:
        await engine.dispose()


async def _person(site: _Site, card: str) -> tuple[int, int]:
    """The card's holder: favorably adjudicated, with a credential awaiting a card."""
    person = await make_person(
        site.client, await site.headers("registrar"), external_id=external_id(card)
    )
    await adjudicate(site.client, await site.headers("adjudicator"), person["id"])
    kind = "piv_i" if CARDS[card].piv_i else "piv"
    cred = await sponsor(
        site.client, await site.headers("sponsor"), person["id"], kind=kind, days=6 * 365
    )
    return person["id"], cred["id"]


async def _enroll(site: _Site, card: str, person_id: int, credential_id: int) -> Answer:
    answer = Answer(card)
    folder = ICAM_CARDS / "cards" / card
    challenges = site.state.authn.challenges
    try:
        reading = await read_card(LoopbackTransport(icam_card(folder)), challenges, pin=PIN)
    except DriverError as exc:
        answer.read = type(exc).__name__
        answer.detail = str(exc)
        return answer
    try:
        identity = await inspect(reading, site.state.authn, today=date.today())
        answer.revocation = ", ".join(
            f"{slot}:{c.revocation_source}" for slot, c in sorted(identity.certificates.items())
        )
    except (CardRefused, AccessdError) as exc:
        answer.inspection = str(exc.code)
        answer.detail = str(exc.detail)
    # The station's own read: its proofs answer fresh challenges (inspect used the first).
    reading = await read_card(LoopbackTransport(icam_card(folder)), challenges, pin=PIN)
    response = await site.client.post(
        "/v1/enrollments",
        json={
            "person_id": person_id,
            "credential_id": credential_id,
            "card": station_body(reading),
        },
        headers=await site.headers("registrar"),
    )
    if response.status_code != 200:
        answer.enrollment = str(response.json().get("code", response.status_code))
        return answer
    answer.enrollment = "enrolled"
    for action, role in (
        ("adjudicate", "adjudicator"),
        ("issue", "issuer"),
        ("activate", "issuer"),
    ):
        ok(await act(site.client, await site.headers(role), credential_id, action))
    return answer


async def _door(site: _Site, card: str, reader_id: int) -> tuple[str, str]:
    """PKI-CAK at the entrance: accessd's challenge, signed by the card's 9E key. Returns
    the outcome and the revocation source the trail names."""
    # A reader account that may read the decision log too, so its reply carries the trail
    # (a plain door_reader's does not), bound to the reader it asks at.
    key = f"door_reader+auditor@{reader_id}"
    if key not in site.roles:
        site.roles[key] = await site.ops.headers("door_reader", "auditor", readers=[reader_id])
    reader_headers = site.roles[key]
    issued = ok(
        await site.client.post(
            "/v1/challenges", json={"reader_id": reader_id}, headers=reader_headers
        ),
        201,
    )
    nonce = base64.b64decode(issued["challenge"])
    piv = PivCard(LoopbackTransport(icam_card(ICAM_CARDS / "cards" / card)))
    await piv.select()
    try:
        der = await piv.read_certificate_der("9e")
        signature = await sign_challenge(piv, "9e", x509.load_der_x509_certificate(der), nonce)
    except (DriverError, ValueError) as exc:
        return f"card:{type(exc).__name__}", ""
    body = {
        "reader_id": reader_id,
        "proof": {
            "mechanism": "pki_cak",
            "challenge": _b64(nonce),
            "certificate": _b64(
                x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.DER)
            ),
            "signature": _b64(signature),
        },
    }
    decided = ok(await site.client.post("/v1/decisions", json=body, headers=reader_headers))
    trail: list[str] = decided.get("trail", [])
    named = [m.group(1) for line in trail if (m := _CHECKED_BY.search(line))]
    source = named[0] if named else ""
    if decided["granted"]:
        return "granted", source
    failing = [line for line in trail if line.startswith("card authentication failed")]
    reason = str(decided["reason"])
    return (f"{reason} ({failing[-1]})" if failing else reason), source
