"""The control panel and the simulated reader in secure sessions: keys, install mode,
refusals and a broken chain, over an in-memory line (libosdp in test_osdp_interop.py)."""

from __future__ import annotations

import asyncio
import os

import pytest

from drivers.osdp.bus import ControlPanel, PdConfig, PdOffline
from drivers.osdp.codes import Command, Reply
from drivers.osdp.frame import crc16
from drivers.osdp.transport import MemoryLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from tests.waiting import until

WAIT = 5.0
KEY = bytes(range(0xA0, 0xB0))


def panel(reader: SimulatedReader, config: PdConfig) -> tuple[ControlPanel, ReaderBus]:
    cp_end, pd_end = MemoryLine.pair()
    bus = ReaderBus(pd_end, [reader])
    cp = ControlPanel(cp_end, [config], poll_interval=0.01, offline_retry=0.05)
    return cp, bus


async def test_a_keyed_reader_gets_a_session_and_everything_is_sealed() -> None:
    reader = SimulatedReader(1, scbk=KEY, require_secure=True)
    cp, _ = panel(reader, PdConfig(1, scbk=KEY))
    reads: list[bytes] = []
    cp.on_reply(lambda a, f: reads.append(f.data) if f.code == Reply.RAW else None)
    cp.start()
    try:
        await until(lambda: cp.pds[1].secure)
        led = bytes((0, 0, 1, 3, 3, 1, 0, 10, 0, 1, 0, 0, 2, 0))
        assert (await asyncio.wait_for(cp.command(1, Command.LED, led), WAIT)).code == Reply.ACK
        assert reader.state.led == led  # decrypted on the reader's side
        reader.present_card(128, bytes(range(16)))
        await until(lambda: bool(reads))
        assert reads[0][4:] == bytes(range(16))  # opened on the panel's side
        assert cp.pds[1].stats.sessions == 1 and cp.pds[1].stats.security_errors == 0
    finally:
        await cp.close()


async def test_install_mode_puts_the_readers_own_key_in_and_a_new_session_on_it() -> None:
    reader = SimulatedReader(1, install_mode=True)
    cp, _ = panel(reader, PdConfig(1, scbk=KEY, install=True))
    cp.start()
    try:
        await until(lambda: cp.pds[1].stats.keys_installed == 1 and cp.pds[1].secure)
        assert reader.scbk == KEY and not reader.install_mode
        assert cp.pds[1].stats.sessions == 2  # on SCBK-D, then on the new key
        reply = await asyncio.wait_for(cp.command(1, Command.LSTAT), WAIT)
        assert reply.code == Reply.LSTATR
    finally:
        await cp.close()


async def test_a_wrong_key_gets_no_session_and_no_command_through() -> None:
    reader = SimulatedReader(1, scbk=os.urandom(16), require_secure=True)
    cp, _ = panel(reader, PdConfig(1, scbk=KEY))
    cp.start()
    try:
        await until(lambda: cp.pds[1].stats.security_errors >= 2)
        assert not cp.pds[1].secure
        with pytest.raises(PdOffline):
            await asyncio.wait_for(cp.command(1, Command.LED, bytes(14)), WAIT)
        assert reader.state.led == b""
    finally:
        await cp.close()


async def test_a_reader_without_install_mode_refuses_the_default_key() -> None:
    reader = SimulatedReader(1, scbk=KEY)
    cp, _ = panel(reader, PdConfig(1, scbk=KEY, install=True))
    cp.start()
    try:
        await until(lambda: cp.pds[1].stats.security_errors >= 1)
        assert cp.pds[1].stats.keys_installed == 0 and reader.security_refusals >= 1
    finally:
        await cp.close()


async def test_a_reply_altered_on_the_line_ends_the_session_and_a_new_one_starts() -> None:
    reader = SimulatedReader(1, scbk=KEY)
    cp, bus = panel(reader, PdConfig(1, scbk=KEY))
    cp.start()
    try:
        await until(lambda: cp.pds[1].secure)
        original = bus.line.write
        tampered = False

        def flip_once(data: bytes) -> None:
            nonlocal tampered
            if not tampered and len(data) > 14:
                tampered = True
                # A MAC bit flipped and the CRC made right again: only the MAC can tell.
                body = bytearray(data[1:-2])
                body[-1] ^= 0x01
                crc = crc16(body)
                data = b"\xff" + bytes(body) + bytes((crc & 0xFF, crc >> 8))
            original(data)

        bus.line.write = flip_once  # type: ignore[method-assign]
        reader.press_keys("1")
        await until(lambda: cp.pds[1].stats.security_errors >= 1)
        await until(lambda: cp.pds[1].secure and cp.pds[1].stats.sessions >= 2)
        assert tampered
    finally:
        await cp.close()
