"""Bad input on the OSDP line: whatever arrives, valid packets or not, neither the
simulated reader nor the control panel raises; it is answered, counted or dropped."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.osdp.bus import ControlPanel, PdConfig
from drivers.osdp.codes import Command
from drivers.osdp.frame import Frame, FrameDecoder, encode
from drivers.osdp.transport import MemoryLine, SerialLine
from simulators.osdp.reader import SimulatedReader

frames = st.builds(
    Frame,
    address=st.integers(0, 0x7F),
    code=st.integers(0, 255),
    data=st.binary(max_size=64),
    sequence=st.integers(0, 3),
    reply=st.booleans(),
    use_crc=st.booleans(),
    scb=st.one_of(
        st.none(), st.binary(min_size=1, max_size=6).map(lambda b: bytes((len(b) + 1,)) + b)
    ).filter(lambda b: b is None or b[1] not in (0x15, 0x16, 0x17, 0x18)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(frames, max_size=12))
def test_the_simulated_reader_answers_any_valid_packet(cmds: list[Frame]) -> None:
    for keyed in (None, bytes(16)):
        reader = SimulatedReader(1, scbk=keyed)
        for cmd in cmds:
            reply = reader.handle(cmd)
            assert reply.reply and reply.address == 1
            FrameDecoder().feed(encode(reply))  # and it is a packet that encodes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(frames.map(encode), st.binary(max_size=80)), max_size=10))
def test_the_control_panel_survives_any_bytes_on_the_line(chunks: list[bytes]) -> None:
    async def run() -> None:
        cp_end, pd_end = MemoryLine.pair()
        cp = ControlPanel(cp_end, [PdConfig(1)], reply_timeout=0.01, poll_interval=0.001)
        cp.start()

        def answer(data: bytes) -> None:
            for chunk in chunks:
                pd_end.write(chunk)

        pd_end.on_data(answer)
        for _ in range(5):
            await asyncio.sleep(0.005)
        assert cp.polling  # the loop is still polling
        await cp.close()

    asyncio.run(run())


async def test_a_socket_url_is_a_serial_line() -> None:
    # pyserial's socket:// URLs (a serial server, ser2net): the same framing over TCP.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    loop = asyncio.get_running_loop()
    line = await SerialLine.open(f"socket://127.0.0.1:{port}")
    conn, _ = await loop.run_in_executor(None, server.accept)
    got: list[bytes] = []
    line.on_data(got.append)
    poll = encode(Frame(address=1, code=Command.POLL))
    line.write(poll)
    assert await loop.run_in_executor(None, conn.recv, 64) == poll
    conn.sendall(b"back")
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.01)
    assert b"".join(got) == b"back"
    await line.close()
    conn.close()
    server.close()
