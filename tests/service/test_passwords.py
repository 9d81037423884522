"""Operator passwords: argon2id, and an unknown username costs what a known one does."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters

from accessd.auth import passwords


def test_the_unknown_user_hash_has_the_hashers_own_parameters() -> None:
    # An unknown username is verified against DUMMY_HASH; with other parameters that check
    # would take another time, and the time would tell which usernames exist.
    fresh = passwords.hash_password("correct horse battery staple")
    assert extract_parameters(passwords.DUMMY_HASH) == extract_parameters(fresh)
    # And it is a real hash (of the phrase it names), so verifying it does the full work.
    assert PasswordHasher().verify(passwords.DUMMY_HASH, "not a real password")


async def test_an_unknown_user_is_refused_after_a_full_verification() -> None:
    assert not await passwords.verify_password(None, "not a real password")
    assert not await passwords.verify_password("not an argon2 hash", "anything at all")
    good = passwords.hash_password("correct horse battery staple")
    assert await passwords.verify_password(good, "correct horse battery staple")
    assert not await passwords.verify_password(good, "correct horse battery stapler")
