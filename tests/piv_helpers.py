"""Shared by the PIV tests: the test PKI's anchors as files, base64, fingerprints."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.events import EventBus
from simulators.pki import CardMaterial, PkiServer, TestPki, free_port
from tests.conftest import Operators
from tests.helpers import act, adjudicate, make_person, ok, sponsor


def anchor_files(pki: TestPki, directory: Path) -> tuple[Path, Path]:
    """The root (trust anchor) and issuing CA as PEM files, for Settings."""
    root, ca = directory / "root.pem", directory / "ca.pem"
    root.write_bytes(pki.root.cert.public_bytes(serialization.Encoding.PEM))
    ca.write_bytes(pki.ca.cert.public_bytes(serialization.Encoding.PEM))
    return root, ca


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fingerprint(card: CardMaterial, slot: str) -> str:
    return card.certificates[slot].fingerprint(hashes.SHA256()).hex()


@dataclass
class PivService:
    """The app trusting a fresh test PKI whose repository is served on loopback."""

    client: httpx.AsyncClient
    app: FastAPI
    pki: TestPki
    server: PkiServer
    settings: Settings


@asynccontextmanager
async def piv_service(
    db_url: str, engine: AsyncEngine, bus: EventBus, directory: Path, **settings: Any
) -> AsyncIterator[PivService]:
    port = free_port()
    pki = TestPki.create(f"http://127.0.0.1:{port}")
    root, ca = anchor_files(pki, directory)
    config = Settings(database_url=db_url, trust_anchors=[root], intermediates=[ca], **settings)
    app = create_app(config, engine=engine, bus=bus)
    async with (
        PkiServer(pki, port) as server,
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://accessd.test"
        ) as client,
    ):
        yield PivService(client, app, pki, server, config)


async def issue_piv_credential(
    client: httpx.AsyncClient, ops: Operators, external_id: str, card: CardMaterial
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new person, favorably adjudicated, whose active PIV credential is ``card`` (FASC-N,
    UUID and the 9A/9E fingerprints bound), taken through the lifecycle by operators in each
    role. Returns (person, credential)."""
    person = await make_person(client, await ops.headers("registrar"), external_id=external_id)
    await adjudicate(client, await ops.headers("adjudicator"), person["id"])
    cred = await sponsor(
        client,
        await ops.headers("sponsor"),
        person["id"],
        fasc_n=card.fascn.hex(),
        card_uuid=card.card_uuid,
        certificates=[{"slot": slot, "sha256": fingerprint(card, slot)} for slot in ("9a", "9e")],
    )
    for action, role in (
        ("enroll", "registrar"),
        ("adjudicate", "adjudicator"),
        ("issue", "issuer"),
        ("activate", "issuer"),
    ):
        ok(await act(client, await ops.headers(role), cred["id"], action))
    return person, cred


async def ids_by_name(
    client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> dict[str, int]:
    """name → id of every record a list route returns (``/v1/doors``, ``/v1/readers``)."""
    return {r["name"]: r["id"] for r in ok(await client.get(path, headers=headers))["items"]}
