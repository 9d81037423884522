"""drivers.mqtt.replies.Pending alone: the request/reply matcher the MQTT link, the panel
session and the gateway share."""

from __future__ import annotations

import asyncio

import pytest

from drivers.mqtt.replies import Pending, json_reply_id


async def test_an_answer_reaches_the_waiter_of_its_key_only() -> None:
    pending: Pending[str, bytes] = Pending()
    first, second = pending.expect("a"), pending.expect("b")
    assert pending.resolve("b", b"for b")
    assert second.result() == b"for b"
    assert not first.done()
    assert pending.resolve("a", b"for a")
    assert await pending.wait("a", first, 1) == b"for a"
    assert "a" not in pending and "b" in pending


async def test_a_late_or_foreign_answer_is_refused() -> None:
    pending: Pending[str, int] = Pending()
    assert not pending.resolve("nobody", 1)
    future = pending.expect("k")
    assert pending.resolve("k", 1)
    assert not pending.resolve("k", 2)  # the first answer stands
    assert future.result() == 1


async def test_a_key_is_awaited_once_at_a_time() -> None:
    pending: Pending[str, int] = Pending()
    pending.expect("dup")
    with pytest.raises(ValueError, match="already waiting"):
        pending.expect("dup")


async def test_a_wait_that_times_out_forgets_its_key() -> None:
    pending: Pending[str, int] = Pending()
    future = pending.expect("slow")
    with pytest.raises(TimeoutError):
        await pending.wait("slow", future, 0.01)
    assert len(pending) == 0
    assert not pending.resolve("slow", 1)


async def test_ask_sends_after_expecting_so_an_immediate_answer_is_not_missed() -> None:
    pending: Pending[tuple[str, str], str] = Pending()

    async def send() -> None:
        # The answer arrives before the sender has even returned.
        assert pending.resolve(("rsp", "r1"), "answer")

    assert await pending.ask(("rsp", "r1"), send(), 1) == "answer"
    assert len(pending) == 0


async def test_ask_lets_the_senders_error_out_and_forgets_the_key() -> None:
    pending: Pending[str, str] = Pending()

    async def send() -> None:
        raise ConnectionError("link down")

    with pytest.raises(ConnectionError):
        await pending.ask("r1", send(), 1)
    assert "r1" not in pending


async def test_ask_for_a_key_already_awaited_does_not_send() -> None:
    pending: Pending[str, str] = Pending()
    pending.expect("r1")
    sent = False

    async def send() -> None:
        nonlocal sent
        sent = True

    with pytest.raises(ValueError, match="already waiting"):
        await pending.ask("r1", send(), 1)
    assert not sent


async def test_fail_all_ends_every_wait_with_the_error() -> None:
    pending: Pending[str, int] = Pending()
    waits = [asyncio.ensure_future(pending.ask(k, asyncio.sleep(0), 5)) for k in "abc"]
    await asyncio.sleep(0.01)
    pending.fail_all(ConnectionResetError("gone"))
    results = await asyncio.gather(*waits, return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results)
    assert len(pending) == 0


async def test_fail_ends_one_wait() -> None:
    pending: Pending[str, int] = Pending()
    doomed, kept = pending.expect("doomed"), pending.expect("kept")
    pending.fail("doomed", LookupError("not sent"))
    with pytest.raises(LookupError):
        await pending.wait("doomed", doomed, 1)
    assert not kept.done()


def test_json_reply_id_reads_the_top_level_string_id_only() -> None:
    assert json_reply_id(b'{"id": "r-1", "granted": true}') == "r-1"
    assert json_reply_id(b'{"id": 7}') is None
    assert json_reply_id(b'["id"]') is None
    assert json_reply_id(b"not json") is None
