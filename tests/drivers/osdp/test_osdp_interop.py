"""Our OSDP stack against libosdp 3.x (libosdp_peer.py beside this file, in .venv-libosdp),
both ways: our control panel driving libosdp's PD, and libosdp's CP driving our simulated reader;
plain, in a secure session, and in install mode (SCBK-D, then osdp_KEYSET)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.codes import Command, Reply
from drivers.osdp.frame import Frame
from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from tests.drivers.osdp.test_libosdp_selfcheck import ADDRESS, SCBK, PeerProcess
from tests.waiting import until

KEY = bytes.fromhex(SCBK)
WAIT = 15.0


async def wait(peer: PeerProcess, name: str, **fields: Any) -> dict[str, Any]:
    return await asyncio.to_thread(peer.wait_event, name, **fields)


@pytest.fixture
async def pty() -> AsyncIterator[PtyLine]:
    line = PtyLine()
    yield line
    await line.close()


@pytest.fixture
async def peers() -> AsyncIterator[list[PeerProcess]]:
    started: list[PeerProcess] = []
    yield started
    for peer in started:
        code, stderr = await asyncio.to_thread(peer.stop)
        assert code == 0, stderr
        assert "Traceback" not in stderr
        assert SCBK not in stderr.lower()  # the key never reaches libosdp's log


async def libosdp(peers: list[PeerProcess], role: str, tty: str, *options: str) -> PeerProcess:
    peer = await asyncio.to_thread(PeerProcess.start, role, tty, *options)
    peers.append(peer)
    await wait(peer, "ready", role=role)
    return peer


# -- our control panel, libosdp's reader ------------------------------------------------


async def our_cp(pty: PtyLine, config: PdConfig) -> ControlPanel:
    pty.start()
    cp = ControlPanel(pty, [config], poll_interval=0.02, offline_retry=0.2)
    cp.start()
    return cp


async def test_our_cp_polls_libosdps_pd_reads_its_identity_and_cards(
    pty: PtyLine, peers: list[PeerProcess]
) -> None:
    pd = await libosdp(peers, "pd", pty.slave_path, "--no-secure")
    cp = await our_cp(pty, PdConfig(ADDRESS))
    reads: list[Frame] = []
    cp.on_reply(lambda a, f: reads.append(f))
    try:
        await until(lambda: cp.pds[ADDRESS].online, WAIT)
        pdid = await asyncio.wait_for(cp.command(ADDRESS, Command.ID, b"\x00"), WAIT)
        assert pdid.code == Reply.PDID and pdid.data[:3] == bytes.fromhex("55ceac")
        cap = await asyncio.wait_for(cp.command(ADDRESS, Command.CAP, b"\x00"), WAIT)
        assert cap.code == Reply.PDCAP and len(cap.data) % 3 == 0
        pd.send(cmd="card", format="raw", bits=26, data="02c0ffc0")
        await until(lambda: any(f.code == Reply.RAW for f in reads), WAIT)
        raw = next(f for f in reads if f.code == Reply.RAW)
        assert raw.data[2:4] == (26).to_bytes(2, "little") and raw.data[4:] == b"\x02\xc0\xff\xc0"
        led = bytes((0, 0, 1, 5, 5, 1, 0, 0, 0, 1, 5, 5, 1, 0))
        ack = await asyncio.wait_for(cp.command(ADDRESS, Command.LED, led), WAIT)
        assert ack.code == Reply.ACK
        seen = await wait(pd, "command", kind="led")
        assert seen["on_color"] == "red"
        assert cp.decoder.stats.bad_check == 0
    finally:
        await cp.close()


async def test_our_cp_runs_a_secure_session_with_libosdps_pd(
    pty: PtyLine, peers: list[PeerProcess]
) -> None:
    pd = await libosdp(peers, "pd", pty.slave_path, "--scbk", SCBK, "--enforce-secure")
    cp = await our_cp(pty, PdConfig(ADDRESS, scbk=KEY))
    reads: list[Frame] = []
    cp.on_reply(lambda a, f: reads.append(f))
    try:
        await until(lambda: cp.pds[ADDRESS].secure, WAIT)
        await wait(pd, "status", online=True, secure=True)
        buz = bytes((0, 2, 3, 3, 2))
        ack = await asyncio.wait_for(cp.command(ADDRESS, Command.BUZ, buz), WAIT)
        assert ack.code == Reply.ACK
        assert (await wait(pd, "command", kind="buzzer"))["rep_count"] == 2
        pd.send(cmd="keypad", digits="42#")
        await until(lambda: any(f.code == Reply.KEYPAD for f in reads), WAIT)
        keys = next(f for f in reads if f.code == Reply.KEYPAD)
        assert keys.data[2:] == b"42\x0d"  # decrypted from SCS_18
        assert cp.pds[ADDRESS].stats.security_errors == 0
    finally:
        await cp.close()


async def test_our_cp_installs_a_key_in_libosdps_pd(pty: PtyLine, peers: list[PeerProcess]) -> None:
    pd = await libosdp(peers, "pd", pty.slave_path, "--install-mode")
    cp = await our_cp(pty, PdConfig(ADDRESS, scbk=KEY, install=True))
    try:
        await until(
            lambda: cp.pds[ADDRESS].stats.keys_installed == 1 and cp.pds[ADDRESS].secure, WAIT
        )
        keyset = await wait(pd, "command", kind="keyset")
        assert keyset["key_length"] == 16
        ack = await asyncio.wait_for(cp.command(ADDRESS, Command.LSTAT), WAIT)
        assert ack.code == Reply.LSTATR
    finally:
        await cp.close()


# -- libosdp's control panel, our reader ------------------------------------------------


def our_reader(pty: PtyLine, **kw: Any) -> SimulatedReader:
    reader = SimulatedReader(ADDRESS, **kw)
    ReaderBus(pty, [reader])
    pty.start()
    return reader


async def test_libosdps_cp_drives_our_reader_in_the_clear(
    pty: PtyLine, peers: list[PeerProcess]
) -> None:
    reader = our_reader(pty)
    cp = await libosdp(peers, "cp", pty.slave_path, "--no-secure")
    info = await wait(cp, "pd_info")
    assert info["id"]["serial_number"] == reader.identity.serial
    await wait(cp, "status", online=True)
    reader.present_card(26, bytes.fromhex("02c0ffc0"))
    card = await wait(cp, "card")
    assert (card["bits"], card["data"]) == (26, "02c0ffc0")
    cp.send(cmd="led", led_number=0, on_color="green", on_count=5, off_count=5)
    await wait(cp, "completed", cmd="led", status="ok")
    assert reader.state.led[5] == 2 or reader.state.led[12] == 2  # green, temp or permanent


async def test_libosdps_cp_opens_a_secure_session_with_our_reader(
    pty: PtyLine, peers: list[PeerProcess]
) -> None:
    reader = our_reader(pty, scbk=KEY)
    cp = await libosdp(peers, "cp", pty.slave_path, "--scbk", SCBK)
    online = await wait(cp, "status", online=True, secure=True)
    assert online["scbkd"] is False
    reader.press_keys("7")
    assert (await wait(cp, "keypad"))["digits"] == "7"
    cp.send(cmd="text", data="HELLO")
    await wait(cp, "completed", cmd="text", status="ok")
    assert reader.state.text.endswith(b"HELLO")
    assert reader.security_refusals == 0


async def test_libosdps_cp_installs_its_key_in_our_reader(
    pty: PtyLine, peers: list[PeerProcess]
) -> None:
    reader = our_reader(pty, install_mode=True)
    cp = await libosdp(peers, "cp", pty.slave_path, "--scbk", SCBK)
    await until(lambda: reader.scbk == KEY, WAIT)
    await wait(cp, "status", online=True, secure=True, scbkd=False)
    assert not reader.install_mode
