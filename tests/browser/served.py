"""`accessd serve` in a subprocess, as an operator's browser meets it: a migrated SQLite
database, one operator, the real uvicorn on a port of the loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.services import operators
from accessd.services.actors import Actor
from tests.mqtt_broker import free_port
from tests.paths import ROOT

#: The HTTP methods an OpenAPI path item holds operations under.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Served:
    """A running accessd: where it answers and what it publishes about itself."""

    url: str
    openapi: dict[str, Any]
    #: role -> the username of an operator with that role alone; all share `password`.
    operators: dict[str, str]
    password: str
    log: Path

    def token(self, role: str) -> str:
        """A bearer token of the operator with ``role``, from POST /v1/auth/token."""
        body = {"username": self.operators[role], "password": self.password}
        answer = httpx.post(f"{self.url}/v1/auth/token", json=body, timeout=30)
        token: str = answer.raise_for_status().json()["access_token"]
        return token

    def operations(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(method, path, operation) for every operation of the OpenAPI document."""
        return [
            (method, path, op)
            for path, item in self.openapi["paths"].items()
            for method, op in item.items()
            if method in METHODS
        ]


async def _prepare(database_url: str, users: dict[str, str], password: str) -> None:
    """Migrates the database and makes the operators (role -> username), as `accessd db
    upgrade` and `accessd operators create` do, but in this process: each of those commands
    costs a Python start-up, 3 s on a loaded two-core machine."""
    engine = make_engine(database_url)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            for role, username in users.items():
                await operators.create_operator(
                    session,
                    Actor(None, "tests/browser", frozenset()),
                    username=username,
                    password=password,
                    roles=[role],
                )
            await session.commit()
    finally:
        await engine.dispose()


@contextlib.contextmanager
def serve(tmp: Path, *, roles: tuple[str, ...], password: str) -> Iterator[Served]:
    """Migrates a database in ``tmp``, makes an operator for each of ``roles`` (named
    browser-<role>), runs `accessd serve` until the block ends, then stops it with SIGTERM
    (SIGKILL past 10 s)."""
    log = tmp / "accessd.log"
    database_url = f"sqlite+aiosqlite:///{tmp / 'accessd.db'}"
    port = free_port()
    env = dict(
        os.environ,
        ACCESSD_DATABASE_URL=database_url,
        ACCESSD_PORT=str(port),
        ACCESSD_LOG_LEVEL="warning",
        # The service reaches nowhere either: no CRL, OCSP or AIA fetches.
        ACCESSD_REVOCATION_FETCHING="false",
        ACCESSD_AIA_FETCHING="false",
    )
    users = {role: f"browser-{role.replace('_', '-')}" for role in roles}
    asyncio.run(_prepare(database_url, users, password))
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "accessd", "serve"], env=env, cwd=ROOT, stdout=out, stderr=out
        )
    try:
        openapi = _wait_up(proc, url, log)
        yield Served(url, openapi, users, password, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> dict[str, Any]:
    """The OpenAPI document, once accessd answers with its database reachable."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"accessd exited at start:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                if client.get("/healthz").json()["database"] == "ok":
                    document: dict[str, Any] = client.get("/openapi.json").raise_for_status().json()
                    return document
            time.sleep(0.1)
    raise AssertionError(f"accessd did not come up within 60 s:\n{log.read_text()}")
