"""Password hashing with argon2id (memory-hard), run off the event loop."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended option (64 MiB, t=3, p=4) is argon2-cffi's default.
_hasher = PasswordHasher()


#: Verified against when the username is unknown, so timing does not reveal which it was.
#: A constant (argon2id of "not a real password"), not hashed at import: every `accessd`
#: command imports this module, and a full-strength hash costs about 0.1 s of CPU. Its
#: parameters must stay the hasher's (a test checks), or the timing would differ.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$clJWVLBSoXWCQAw6J68AEg$uHUai3"
    "RhVO7BrtPMY1ULxMTkyJgxkeKR9iJeXcvUk1A"
)


MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords must be at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


#: Password checks run in pools of their own: each is ~0.1 s of CPU at 64 MiB, and a flood
#: of them in the default executor would take the threads every other blocking call of the
#: service (policy parsing, file reads) waits for. Two lanes: a login from an account and
#: address that logged in before gets its own, so a spray of wrong passwords from many
#: addresses (which throttling cannot hold back) queues behind itself, not before it.
_CHECKING = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")
_KNOWN = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2-known")


async def verify_password(stored: str | None, password: str, *, known: bool = False) -> bool:
    pool = _KNOWN if known else _CHECKING
    return await asyncio.get_running_loop().run_in_executor(pool, _verify, stored, password)
