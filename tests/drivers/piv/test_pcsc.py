"""drivers.pcsc over the real stack: vpcd slot → pcscd → pyscard → PcscTransport/ReaderWatch.

Needs pcscd with vsmartcard's vpcd on 35963/35964 (``make test`` starts them via
tests/services.sh); skipped, saying so, when they are not there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.apdu import Command, exchange, parse_response
from drivers.errors import CardRemoved, FileNotFound, PcscError
from simulators.card import INS_LONG_TEST, PIV_AID, ProbeCard
from simulators.vpcd import VirtualReaderSlot

try:
    from drivers.pcsc import (
        CardInserted,
        CardRemovedEvent,
        PcscTransport,
        ReaderWatch,
        list_readers,
    )
except ImportError:  # pragma: no cover - the pcsc extra is not installed
    PcscTransport = None  # type: ignore[assignment,misc]

READER_0 = ("Virtual PCD 00 00", 35963)
READER_1 = ("Virtual PCD 00 01", 35964)
SELECT_PIV_PREFIX = Command(0x00, 0xA4, 0x04, 0x00, PIV_AID[:5], le=256)
LONG_TEST = Command(0x00, INS_LONG_TEST, 0x00, 0x00, le=256)
WAIT = 10.0


def _stack_unavailable() -> str | None:
    if PcscTransport is None:
        return "pyscard is not installed (pip install .[pcsc])"
    try:
        names = asyncio.run(list_readers())
    except PcscError as exc:
        return f"pcscd is not reachable: {exc}"
    for name, _ in (READER_0, READER_1):
        if name not in names:
            return f"pcscd lists no {name!r} reader: {names}"
    return None


# No TCP probe of vpcd's ports here: vpcd takes ~0.5 s to listen again after a client
# leaves, so a probe at collection made test_vpcd's own probe, run right after, skip its
# tests. pcscd lists the Virtual PCD readers only while vpcd is loaded, which suffices.
_SKIP = _stack_unavailable()
pcsc = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
pytestmark = pytest.mark.vpcd


async def _insert(slot: VirtualReaderSlot) -> VirtualReaderSlot:
    """Insert, retrying while vpcd is still re-arming after another client (e.g. a probe)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            await slot.insert()
            return slot
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _card_in(port: int, card: ProbeCard) -> AsyncIterator[VirtualReaderSlot]:
    slot = await _insert(VirtualReaderSlot(port, card))
    try:
        yield slot
    finally:
        await slot.remove()


async def _connect(reader: str) -> PcscTransport:
    """Connect once pcscd has noticed the inserted card."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await PcscTransport.connect(reader)
        except PcscError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pcsc
async def test_list_readers_finds_both_virtual_readers() -> None:
    names = await list_readers()
    assert READER_0[0] in names
    assert READER_1[0] in names


@pcsc
async def test_exchange_over_pcsc_selects_and_assembles_a_long_answer() -> None:
    card = ProbeCard()
    async with _card_in(READER_0[1], card), await _connect(READER_0[0]) as transport:
        assert transport.atr == card.atr
        selected = await exchange(transport, SELECT_PIV_PREFIX)
        assert (selected.data, selected.sw) == (b"", 0x9000)
        long = await exchange(transport, LONG_TEST)
    assert long.sw == 0x9000
    assert long.data == bytes(i % 251 for i in range(ProbeCard.LONG_TEST_SIZE))
    assert card.selected == PIV_AID


@pcsc
async def test_card_errors_come_back_typed_over_pcsc() -> None:
    other = ProbeCard(aid=bytes.fromhex("A0000006472F0001"))
    async with _card_in(READER_0[1], other), await _connect(READER_0[0]) as transport:
        with pytest.raises(FileNotFound):
            await exchange(transport, SELECT_PIV_PREFIX)


@pcsc
async def test_transmit_after_removal_raises_card_removed() -> None:
    slot = await _insert(VirtualReaderSlot(READER_0[1], ProbeCard()))
    transport = await _connect(READER_0[0])
    try:
        await exchange(transport, SELECT_PIV_PREFIX)
        await slot.remove()
        # Until pcscd notices the removal, a transmit fails as a plain PcscError
        # (SCARD_E_NOT_TRANSACTED); after that every transmit is CardRemoved.
        deadline = time.monotonic() + WAIT
        while True:
            with pytest.raises(PcscError) as caught:
                await transport.transmit(SELECT_PIV_PREFIX.encode())
            if isinstance(caught.value, CardRemoved) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert isinstance(caught.value, CardRemoved)
        assert caught.value.__cause__ is not None  # translated from pyscard's exception
    finally:
        await slot.remove()
        await transport.close()


@pcsc
async def test_transmit_after_close_is_an_error() -> None:
    async with _card_in(READER_0[1], ProbeCard()):
        transport = await _connect(READER_0[0])
        await transport.close()
        with pytest.raises(PcscError):
            await transport.transmit(SELECT_PIV_PREFIX.encode())


@pcsc
async def test_an_exclusive_connection_keeps_other_clients_off_the_card() -> None:
    async with _card_in(READER_0[1], ProbeCard()):
        await asyncio.sleep(0.5)  # past pcscd's first presence check, which resets the card
        owner = await _connect_exclusive(READER_0[0])
        try:
            with pytest.raises(PcscError) as kept_out:
                await PcscTransport.connect(READER_0[0])
            assert "sharing violation" in str(kept_out.value).lower()
            response = parse_response(await owner.transmit(SELECT_PIV_PREFIX.encode()))
            assert response.sw == 0x9000
        finally:
            await owner.close()
        shared = await _connect(READER_0[0])  # free again once the owner lets go
        await shared.close()


async def _connect_exclusive(reader: str) -> PcscTransport:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return await PcscTransport.connect(reader, exclusive=True)
        except PcscError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _threads() -> set[threading.Thread]:
    """Live threads, leaving out the event loop's default executor (asyncio.to_thread)."""
    return {t for t in threading.enumerate() if not t.name.startswith("asyncio_")}


def _pcsc_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pcsc-")]


async def _wait_event(watch: ReaderWatch, wanted: CardInserted | CardRemovedEvent) -> None:
    """Consume events until ``wanted``; a card another test just removed may come first."""

    async def until() -> None:
        async for event in watch:
            if event == wanted:
                return
        raise AssertionError("the watch ended")

    await asyncio.wait_for(until(), WAIT)


@pcsc
async def test_reader_watch_reports_insert_then_remove_and_leaks_no_thread() -> None:
    before = _threads()
    card = ProbeCard(atr=bytes.fromhex("3B80800103"))  # an ATR no other test uses
    async with ReaderWatch() as watch:
        async with _card_in(READER_1[1], card):
            await _wait_event(watch, CardInserted(READER_1[0], card.atr))
        await _wait_event(watch, CardRemovedEvent(READER_1[0]))
        assert watch.dropped == 0
    assert _threads() - before == set()
    assert _pcsc_threads() == []


@pcsc
async def test_reader_watch_reports_a_card_already_present() -> None:
    card = ProbeCard(atr=bytes.fromhex("3B80800104"))
    async with _card_in(READER_0[1], card):
        await (await _connect(READER_0[0])).close()  # pcscd has seen the card by now
        async with ReaderWatch() as watch:
            await _wait_event(watch, CardInserted(READER_0[0], card.atr))


@pcsc
async def test_reader_watch_stops_promptly_when_idle() -> None:
    before = _threads()
    start = time.monotonic()
    async with ReaderWatch():
        await asyncio.sleep(0.1)
    assert time.monotonic() - start < 2.0
    assert _threads() - before == set()
    assert _pcsc_threads() == []


@pcsc
async def test_two_cards_in_two_readers_each_answer_on_their_own_transport() -> None:
    first = ProbeCard(atr=bytes.fromhex("3B80800101"))
    second = ProbeCard(aid=bytes.fromhex("A0000006472F0001"), atr=bytes.fromhex("3B80800102"))
    async with (
        _card_in(READER_0[1], first),
        _card_in(READER_1[1], second),
        await _connect(READER_0[0]) as a,
        await _connect(READER_1[0]) as b,
    ):
        assert (a.atr, b.atr) == (first.atr, second.atr)
        answers = await asyncio.gather(
            exchange(a, SELECT_PIV_PREFIX, check=False),
            exchange(b, SELECT_PIV_PREFIX, check=False),
            exchange(a, LONG_TEST),
            exchange(b, LONG_TEST),
        )
    assert _pcsc_threads() == []  # each transport's worker ended with its close()
    assert [r.sw for r in answers] == [0x9000, 0x6A82, 0x9000, 0x9000]
    assert answers[2].data == answers[3].data
    assert len(answers[2].data) == ProbeCard.LONG_TEST_SIZE
    assert first.selected == PIV_AID
    assert second.selected is None


NO_SERVICE_PROBE = """
import asyncio
from drivers.errors import PcscUnavailable
from drivers.pcsc import PcscTransport, ReaderWatch, list_readers

async def watch():
    async with ReaderWatch():
        pass

for attempt in (list_readers(), PcscTransport.connect("Virtual PCD 00 00"), watch()):
    try:
        asyncio.run(attempt)
    except PcscUnavailable as exc:
        assert exc.__cause__ is not None or "context" in str(exc), exc
        print("unavailable")
"""


@pytest.mark.skipif(PcscTransport is None, reason="pyscard is not installed")
def test_no_pcscd_is_pcsc_unavailable_everywhere(tmp_path: Path) -> None:
    """pcsc-lite's client socket pointed at nothing looks exactly like pcscd being down."""
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.sock")}
    done = subprocess.run(
        [sys.executable, "-c", NO_SERVICE_PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["unavailable"] * 3
