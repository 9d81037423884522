"""Reader attestation keys through a database outage: the last key read stands (BIO and
signed PIN claims keep verifying), and a reader never read is an outage error, not
"no key"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from accessd.authn.reader_keys import ReaderKeys


class Database:
    """Stands in for the sessionmaker: answers with a PEM, or is away."""

    def __init__(self, pem: str) -> None:
        self.pem = pem
        self.away = False
        self.queries = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Database]:
        yield self

    async def scalar(self, _: Any) -> str:
        self.queries += 1
        if self.away:
            raise ConnectionRefusedError("database away")
        return self.pem


async def test_the_last_key_read_stands_while_the_database_is_away() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    db = Database(pem)
    now = [0.0]
    keys = ReaderKeys(db, ttl=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await keys(3) == key
    db.away = True
    now[0] = 60.0  # long expired
    assert await keys(3) == key
    assert db.queries == 2  # it did ask
    with pytest.raises(ConnectionRefusedError):
        await keys(4)  # never read: no key to stand by
