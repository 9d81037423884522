"""drivers.osdp.bus.ControlPanel over an in-memory line, against a byte-level fake PD that
can stay silent, corrupt, answer busy or NAK; the real simulated reader and libosdp's PD
are tested in tests/drivers/osdp/test_osdp_interop.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from drivers.osdp.bus import ControlPanel, PdConfig, PdOffline
from drivers.osdp.codes import Command, NakReason, Reply
from drivers.osdp.frame import Frame, FrameDecoder, encode
from drivers.osdp.transport import MemoryLine
from tests.waiting import until

WAIT = 5.0


@dataclass
class FakePd:
    """Answers its own address: ACK to polls, or what ``script`` returns."""

    line: MemoryLine
    address: int
    script: Callable[[Frame], Frame | bytes | None] | None = None
    seen: list[Frame] = field(default_factory=list)
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    silent: bool = False

    def __post_init__(self) -> None:
        self.line.on_data(self._on_data)

    def reply(self, cmd: Frame, code: int, data: bytes = b"") -> Frame:
        return Frame(address=self.address, code=code, data=data, sequence=cmd.sequence, reply=True)

    def _on_data(self, data: bytes) -> None:
        for cmd in self.decoder.feed(data):
            if cmd.address != self.address or self.silent:
                continue
            self.seen.append(cmd)
            answer = self.script(cmd) if self.script else None
            if answer is None:
                answer = self.reply(cmd, Reply.ACK)
            self.line.write(answer if isinstance(answer, bytes) else encode(answer))


@pytest.fixture
async def bus() -> AsyncIterator[tuple[ControlPanel, MemoryLine]]:
    cp_end, pd_end = MemoryLine.pair()
    cp = ControlPanel(
        cp_end,
        [PdConfig(1), PdConfig(2)],
        reply_timeout=0.05,
        poll_interval=0.01,
        offline_after=0.3,
        offline_retry=0.05,
    )
    yield cp, pd_end
    await cp.close()


async def test_polls_every_pd_with_sequence_0_then_1_2_3_1(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus
    pd = FakePd(pd_end, 1)
    online: list[tuple[int, bool]] = []
    cp.on_status(lambda a, up: online.append((a, up)))
    cp.start()
    await until(lambda: len(pd.seen) >= 6)
    assert [f.sequence for f in pd.seen[:6]] == [0, 1, 2, 3, 1, 2]
    assert all(f.code == Command.POLL for f in pd.seen)
    assert (1, True) in online
    # PD 2 never answers: it stays offline, polled once per offline_retry only.
    assert not cp.pds[2].online and cp.pds[2].stats.polls < cp.pds[1].stats.polls


async def test_a_command_gets_its_reply_and_poll_data_goes_to_the_handlers(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus
    card = bytes.fromhex("00 01 1a 00 12 34 56 40".replace(" ", ""))
    sent_card = False

    def script(cmd: Frame) -> Frame | None:
        nonlocal sent_card
        if cmd.code == Command.ID:
            return pd.reply(cmd, Reply.PDID, bytes(12))
        if cmd.code == Command.POLL and not sent_card:
            sent_card = True
            return pd.reply(cmd, Reply.RAW, card)
        return None

    pd = FakePd(pd_end, 1, script)
    reads: list[tuple[int, Frame]] = []
    cp.on_reply(lambda a, f: reads.append((a, f)))
    cp.start()
    reply = await asyncio.wait_for(cp.command(1, Command.ID, b"\x00"), WAIT)
    assert reply.code == Reply.PDID and len(reply.data) == 12
    await until(lambda: bool(reads))
    assert reads[0][0] == 1 and reads[0][1].code == Reply.RAW and reads[0][1].data == card


async def test_a_lost_reply_is_resent_with_the_same_sequence(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus
    dropped = False

    def script(cmd: Frame) -> bytes | None:
        nonlocal dropped
        if cmd.code == Command.LSTAT and not dropped:
            dropped = True
            wire = bytearray(encode(pd.reply(cmd, Reply.LSTATR, b"\x00\x00")))
            wire[-1] ^= 0xFF  # a CRC error on the way back
            return bytes(wire)
        if cmd.code == Command.LSTAT:
            return encode(pd.reply(cmd, Reply.LSTATR, b"\x00\x00"))
        return None

    pd = FakePd(pd_end, 1, script)
    cp.start()
    await until(lambda: cp.pds[1].online)
    reply = await asyncio.wait_for(cp.command(1, Command.LSTAT), WAIT)
    assert reply.code == Reply.LSTATR
    lstats = [f for f in pd.seen if f.code == Command.LSTAT]
    assert len(lstats) == 2 and lstats[0].sequence == lstats[1].sequence
    assert cp.pds[1].stats.retries >= 1 and cp.decoder.stats.bad_check == 1


async def test_busy_is_waited_out_and_a_sequence_nak_restarts_at_zero(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus
    busy_left = 2
    naked = False

    def script(cmd: Frame) -> Frame | None:
        nonlocal busy_left, naked
        if cmd.code == Command.CAP and busy_left:
            busy_left -= 1
            return pd.reply(cmd, Reply.BUSY)
        if cmd.code == Command.OSTAT and not naked:
            naked = True
            return pd.reply(cmd, Reply.NAK, bytes((NakReason.BAD_SEQUENCE,)))
        return None

    pd = FakePd(pd_end, 1, script)
    cp.start()
    await until(lambda: cp.pds[1].online)
    assert (await asyncio.wait_for(cp.command(1, Command.CAP, b"\x00"), WAIT)).code == Reply.ACK
    assert cp.pds[1].stats.busy == 2
    nak = await asyncio.wait_for(cp.command(1, Command.OSTAT), WAIT)
    assert nak.code == Reply.NAK and nak.data == bytes((NakReason.BAD_SEQUENCE,))
    # The frame right after the NAKed one, found by position: counting frames once the
    # command has returned raced the bus, which under load had sent two polls by then.
    naked_at = next(i for i, f in enumerate(pd.seen) if f.code == Command.OSTAT)
    await until(lambda: len(pd.seen) > naked_at + 1)
    assert pd.seen[naked_at + 1].sequence == 0


async def test_a_pd_that_stops_answering_goes_offline_and_commands_fail(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus
    pd = FakePd(pd_end, 1)
    events: list[tuple[int, bool]] = []
    cp.on_status(lambda a, up: events.append((a, up)))
    cp.start()
    await until(lambda: cp.pds[1].online)
    pd.silent = True
    await until(lambda: (1, False) in events)
    with pytest.raises(PdOffline):
        await asyncio.wait_for(cp.command(1, Command.LSTAT), WAIT)
    pd.silent = False
    await until(lambda: events[-1] == (1, True))
    assert pd.seen[-1].sequence in (0, 1)  # started again from 0


async def test_garbage_echoes_and_strangers_on_the_line_are_counted_not_fatal(
    bus: tuple[ControlPanel, MemoryLine],
) -> None:
    cp, pd_end = bus

    def script(cmd: Frame) -> bytes | None:
        ok = encode(pd.reply(cmd, Reply.ACK))
        echo = encode(Frame(address=1, code=Command.POLL, sequence=cmd.sequence))
        stranger = encode(Frame(address=9, code=Reply.ACK, reply=True, sequence=cmd.sequence))
        return b"\x00garbage" + echo + stranger + ok

    pd = FakePd(pd_end, 1, script)
    cp.start()
    await until(lambda: cp.pds[1].stats.replies >= 5)
    assert cp.stats.echoes >= 5 and cp.stats.unexpected >= 5
    assert cp.decoder.stats.garbage >= 5 * len(b"\x00garbage")


async def test_pds_must_have_distinct_valid_addresses() -> None:
    a, _ = MemoryLine.pair()
    with pytest.raises(ValueError):
        ControlPanel(a, [PdConfig(1), PdConfig(1)])
    with pytest.raises(ValueError):
        PdConfig(0x7F)
