"""The virtual card through the real PC/SC stack: vpcd slot → pcscd → pyscard client.

Needs pcscd with vsmartcard's vpcd listening on 35963/35964 (``make test`` starts them via
tests/services.sh); skipped, saying so, when they are not there.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from simulators.card import PIV_AID, ProbeCard
from simulators.vpcd import VirtualReaderSlot
from tests.drivers.piv.test_piv_vpcd import port_listening

try:
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.System import readers
except ImportError:  # pragma: no cover - the pcsc extra is not installed
    readers = None

READER_0 = ("Virtual PCD 00 00", 35963)
READER_1 = ("Virtual PCD 00 01", 35964)
SELECT_PIV_PREFIX = [0x00, 0xA4, 0x04, 0x00, 0x05, *PIV_AID[:5], 0x00]
SELECT_OTHER = [0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00]
LONG_TEST = [0x00, 0xE0, 0x00, 0x00, 0x00]
WAIT = 10.0

T = TypeVar("T")


def _port_open(port: int) -> bool:
    # Read from /proc, never by connecting: vpcd takes a connect for a card coming and going.
    return port_listening(port)


def _vpcd_unavailable() -> str | None:
    if readers is None:
        return "pyscard is not installed (pip install .[pcsc])"
    for _, port in (READER_0, READER_1):
        if not _port_open(port):
            return f"vpcd is not listening on 127.0.0.1:{port} (run tests/services.sh)"
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:  # pyscard raises its own types when pcscd is absent
        return f"pcscd is not reachable: {exc}"
    if not any(n.startswith(READER_0[0]) for n in names):
        return f"pcscd lists no {READER_0[0]!r} reader: {names}"
    return None


_SKIP = _vpcd_unavailable()
pcsc = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
pytestmark = pytest.mark.vpcd


def _reader(name: str) -> Any:
    for reader in readers():
        if str(reader).startswith(name):
            return reader
    raise AssertionError(f"no reader {name!r}")


def _wait_for(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = check()
        if result is not None:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _connect(name: str) -> Any:
    """Connect to the card in ``name``, waiting for pcscd to notice it was inserted."""

    def attempt() -> Any:
        connection = _reader(name).createConnection()
        try:
            connection.connect()
        except (NoCardException, CardConnectionException):
            return None
        return connection

    return _wait_for(attempt, f"a card in {name}")


def _card_absent(name: str) -> bool:
    def attempt() -> bool | None:
        connection = _reader(name).createConnection()
        try:
            connection.connect()
        except NoCardException:
            return True
        except CardConnectionException:
            return None
        connection.disconnect()
        return None

    return _wait_for(attempt, f"{name} to report no card")


def _transmit(connection: Any, apdu: list[int]) -> tuple[bytes, int]:
    data, sw1, sw2 = connection.transmit(apdu)
    return bytes(data), (sw1 << 8) | sw2


def _get_whole(connection: Any, apdu: list[int]) -> tuple[bytes, int]:
    """pyscard does not loop GET RESPONSE itself, so the client has to (docs/protocols.md)."""
    data, sw = _transmit(connection, apdu)
    while sw >> 8 == 0x61:
        more, sw = _transmit(connection, [0x00, 0xC0, 0x00, 0x00, sw & 0xFF])
        data += more
    return data, sw


@pytest.fixture
async def slot0() -> AsyncIterator[VirtualReaderSlot]:
    async with VirtualReaderSlot(READER_0[1], ProbeCard()) as slot:
        yield slot


@pcsc
async def test_probe_card_answers_through_pcscd(slot0: VirtualReaderSlot) -> None:
    card = slot0.card
    assert isinstance(card, ProbeCard)

    def client() -> dict[str, Any]:
        connection = _connect(READER_0[0])
        try:
            return {
                "atr": bytes(connection.getATR()),
                "select": _transmit(connection, SELECT_PIV_PREFIX),
                "other": _transmit(connection, SELECT_OTHER),
                "long": _get_whole(connection, LONG_TEST),
            }
        finally:
            connection.disconnect()

    seen = await asyncio.to_thread(client)
    assert seen["atr"] == card.atr
    assert seen["select"] == (b"", 0x9000)
    assert seen["other"] == (b"", 0x6A82)
    assert seen["long"] == (bytes(i % 251 for i in range(ProbeCard.LONG_TEST_SIZE)), 0x9000)
    assert card.selected == PIV_AID  # the failed probe left PIV selected


@pcsc
async def test_removing_the_card_is_seen_by_pcscd() -> None:
    slot = VirtualReaderSlot(READER_0[1], ProbeCard())
    await slot.insert()
    try:
        connection = await asyncio.to_thread(_connect, READER_0[0])
        await asyncio.to_thread(connection.disconnect)
    finally:
        await slot.remove()
    assert not slot.inserted
    assert await asyncio.to_thread(_card_absent, READER_0[0])


@pcsc
async def test_two_cards_in_two_readers_at_once() -> None:
    first = ProbeCard(atr=bytes.fromhex("3B80800101"))
    second = ProbeCard(aid=bytes.fromhex("A0000006472F0001"), atr=bytes.fromhex("3B80800102"))
    async with VirtualReaderSlot(READER_0[1], first), VirtualReaderSlot(READER_1[1], second):

        def client() -> list[tuple[bytes, int]]:
            a, b = _connect(READER_0[0]), _connect(READER_1[0])
            try:
                return [
                    (bytes(a.getATR()), _transmit(a, SELECT_PIV_PREFIX)[1]),
                    (bytes(b.getATR()), _transmit(b, SELECT_PIV_PREFIX)[1]),
                ]
            finally:
                a.disconnect()
                b.disconnect()

        seen = await asyncio.to_thread(client)
    assert seen == [(first.atr, 0x9000), (second.atr, 0x6A82)]


@pcsc
async def test_card_can_be_removed_and_inserted_again(slot0: VirtualReaderSlot) -> None:
    await slot0.remove()
    await asyncio.to_thread(_card_absent, READER_0[0])
    await slot0.insert()

    def client() -> int:
        connection = _connect(READER_0[0])
        try:
            return _transmit(connection, SELECT_PIV_PREFIX)[1]
        finally:
            connection.disconnect()

    assert await asyncio.to_thread(client) == 0x9000


async def _frame(reader: asyncio.StreamReader) -> bytes:
    length = int.from_bytes(await reader.readexactly(2), "big")
    return await reader.readexactly(length)


async def test_garbage_frames_are_dropped_and_counted_and_hangup_is_clean() -> None:
    """A fake vpcd (no pcscd needed) sends junk, then real requests, then hangs up."""
    answers: asyncio.Queue[bytes] = asyncio.Queue()
    done = asyncio.Event()

    async def fake_vpcd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((5000).to_bytes(2, "big") + bytes(5000))  # oversized
        writer.write(b"\x00\x00")  # empty
        writer.write(b"\x00\x01\x07")  # unknown control byte
        writer.write(b"\x00\x02\x00\xa4")  # too short for an APDU
        writer.write(b"\x00\x01\x01")  # power on: no answer
        writer.write(b"\x00\x01\x04")  # get ATR
        apdu = bytes(SELECT_PIV_PREFIX)
        writer.write(len(apdu).to_bytes(2, "big") + apdu)
        await writer.drain()
        await answers.put(await _frame(reader))
        await answers.put(await _frame(reader))
        writer.close()
        done.set()

    server = await asyncio.start_server(fake_vpcd, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    card = ProbeCard()
    slot = VirtualReaderSlot(port, card)
    try:
        await slot.insert()
        await asyncio.wait_for(done.wait(), WAIT)
        assert await answers.get() == card.atr
        assert await answers.get() == b"\x90\x00"
        for _ in range(100):
            if not slot.inserted:
                break
            await asyncio.sleep(0.01)
        assert not slot.inserted  # the hang-up ended the slot's task without an exception
        assert slot.dropped_frames == 4
        assert slot.apdus == 1
    finally:
        await slot.remove()
        server.close()
        await server.wait_closed()


@pcsc
@pytest.mark.parametrize(
    ("quickack", "count"), [(True, 200), (False, 20)], ids=["quickack", "nodelay-only"]
)
async def test_round_trip_median_of_selects(quickack: bool, count: int) -> None:
    """Prints the median SELECT round trip; a figure for the report, not an assertion."""
    async with VirtualReaderSlot(READER_0[1], ProbeCard(), quickack=quickack) as slot:

        def client() -> list[float]:
            connection = _connect(READER_0[0])
            try:
                timings = []
                for _ in range(count):
                    start = time.perf_counter()
                    _, sw = _transmit(connection, SELECT_PIV_PREFIX)
                    timings.append(time.perf_counter() - start)
                    assert sw == 0x9000
                return timings
            finally:
                connection.disconnect()

        timings = await asyncio.to_thread(client)
        assert slot.apdus >= count
    median_ms = statistics.median(timings) * 1000
    print(
        f"\nvpcd SELECT round trip ({'quickack' if quickack else 'nodelay only'}): "
        f"median {median_ms:.3f} ms, max {max(timings) * 1000:.3f} ms over {count}"
    )
