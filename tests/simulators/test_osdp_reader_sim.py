"""simulators.osdp: the simulated reader's protocol, and the control panel driving readers
over a real pty through pyserial-asyncio-fast."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.codes import Command, NakReason, Reply
from drivers.osdp.frame import Frame
from drivers.osdp.transport import SerialLine
from simulators.osdp.pty import PtyLine
from simulators.osdp.reader import ReaderBus, SimulatedReader
from tests.waiting import until

WAIT = 5.0


def cmd(code: int, data: bytes = b"", seq: int = 1, address: int = 1) -> Frame:
    return Frame(address=address, code=code, data=data, sequence=seq)


def test_a_repeated_sequence_gets_the_same_reply_without_acting_twice() -> None:
    reader = SimulatedReader(1)
    reader.present_card(26, bytes.fromhex("02 00 08 40".replace(" ", "")))
    reader.present_card(26, bytes.fromhex("02 00 08 80".replace(" ", "")))
    assert reader.handle(cmd(Command.POLL, seq=0)).code == Reply.RAW
    first = reader.handle(cmd(Command.POLL, seq=1))
    again = reader.handle(cmd(Command.POLL, seq=1))  # our reply was lost on the way
    assert first == again and first.code == Reply.RAW
    assert reader.handle(cmd(Command.POLL, seq=2)).code == Reply.ACK  # both cards out


def test_a_skipped_sequence_is_refused_and_zero_starts_over() -> None:
    reader = SimulatedReader(1)
    reader.handle(cmd(Command.POLL, seq=0))
    nak = reader.handle(cmd(Command.POLL, seq=3))
    assert nak.code == Reply.NAK and nak.data == bytes((NakReason.BAD_SEQUENCE,))
    assert reader.handle(cmd(Command.POLL, seq=0)).code == Reply.ACK
    assert reader.handle(cmd(Command.POLL, seq=1)).code == Reply.ACK


def test_unknown_and_malformed_commands_are_nakked() -> None:
    reader = SimulatedReader(1)
    assert reader.handle(cmd(0x7E, seq=0)).data == bytes((NakReason.UNKNOWN_COMMAND,))
    assert reader.handle(cmd(Command.LED, b"\x00" * 13, seq=1)).data == bytes(
        (NakReason.BAD_LENGTH,)
    )


@pytest.fixture
async def pty_bus() -> AsyncIterator[tuple[ControlPanel, dict[int, SimulatedReader]]]:
    pty = PtyLine()
    readers = {a: SimulatedReader(a) for a in (1, 2, 3)}
    ReaderBus(pty, list(readers.values()))
    pty.start()
    line = await SerialLine.open(pty.slave_path)
    cp = ControlPanel(line, [PdConfig(a) for a in readers], poll_interval=0.01)
    cp.start()
    yield cp, readers
    await cp.close()
    await pty.close()


async def test_readers_on_a_pty_come_online_and_answer_by_address(
    pty_bus: tuple[ControlPanel, dict[int, SimulatedReader]],
) -> None:
    cp, readers = pty_bus
    await until(lambda: all(pd.online for pd in cp.pds.values()))
    pdid = await asyncio.wait_for(cp.command(2, Command.ID, b"\x00"), WAIT)
    assert pdid.code == Reply.PDID and pdid.address == 2
    assert struct.unpack("<I", pdid.data[5:9])[0] == readers[2].identity.serial
    cap = await asyncio.wait_for(cp.command(3, Command.CAP, b"\x00"), WAIT)
    assert cap.code == Reply.PDCAP and len(cap.data) % 3 == 0


async def test_cards_keys_and_tamper_reach_the_panel_and_outputs_reach_the_reader(
    pty_bus: tuple[ControlPanel, dict[int, SimulatedReader]],
) -> None:
    cp, readers = pty_bus
    got: list[tuple[int, Frame]] = []
    cp.on_reply(lambda address, frame: got.append((address, frame)))
    await until(lambda: all(pd.online for pd in cp.pds.values()))
    readers[1].present_card(26, bytes.fromhex("02000840"))
    readers[3].press_keys("12#")
    readers[2].set_tamper(True)
    await until(lambda: len(got) >= 3)
    by_address = {a: f for a, f in got}
    assert by_address[1].code == Reply.RAW
    assert by_address[1].data == bytes((0, 0)) + struct.pack("<H", 26) + bytes.fromhex("02000840")
    assert by_address[3].code == Reply.KEYPAD and by_address[3].data == b"\x00\x03" + b"12\x0d"
    assert by_address[2].code == Reply.LSTATR and by_address[2].data[0] == 1
    led = bytes((0, 0, 1, 3, 3, 1, 0, 10, 0, 1, 0, 0, 2, 0))
    assert (await asyncio.wait_for(cp.command(1, Command.LED, led), WAIT)).code == Reply.ACK
    assert readers[1].state.led == led
    out = bytes((0, 2, 0, 0))
    assert (await asyncio.wait_for(cp.command(1, Command.OUT, out), WAIT)).code == Reply.ACK
    assert readers[1].state.outputs[0] == 1
    assert cp.decoder.stats.bad_check == 0 and all(pd.stats.timeouts == 0 for pd in cp.pds.values())


async def test_comset_moves_a_reader_to_a_new_address_and_the_panel_follows(
    pty_bus: tuple[ControlPanel, dict[int, SimulatedReader]],
) -> None:
    cp, readers = pty_bus
    await until(lambda: all(pd.online for pd in cp.pds.values()))
    assert await asyncio.wait_for(cp.set_communication(2, 9, 115200), WAIT) == 9
    assert 2 not in cp.pds and 9 in cp.pds and readers[2].address == 9
    pdid = await asyncio.wait_for(cp.command(9, Command.ID, b"\x00"), WAIT)
    assert pdid.code == Reply.PDID and pdid.address == 9
    with pytest.raises(ValueError):
        await cp.set_communication(9, 1, 115200)  # address 1 is taken


async def test_the_simulator_command_serves_keyed_readers_on_a_pty(tmp_path: Path) -> None:
    key = bytes(range(16))
    key_file = tmp_path / "scbk"
    key_file.write_text(key.hex())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.osdp",
        "--readers",
        "2",
        "--scbk-file",
        str(key_file),
        "--require-secure",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    hello = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    assert hello["addresses"] == [1, 2]
    line = await SerialLine.open(hello["port"])
    cp = ControlPanel(line, [PdConfig(1, scbk=key), PdConfig(2, scbk=key)], poll_interval=0.01)
    cp.start()
    try:
        await until(lambda: all(pd.secure for pd in cp.pds.values()))
    finally:
        await cp.close()
        proc.stdin.close()  # end of input ends the simulator
        assert await asyncio.wait_for(proc.wait(), 10) == 0
