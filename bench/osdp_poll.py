"""Benchmark: OSDP polls over a pty, from `drivers.osdp.bus.ControlPanel` to simulated
readers in another process.

Targets: a POLL round trip over a pty with a median under 2 ms (libosdp's own CP
polls every 20 ms, bound by its refresh loop); 32 readers on one bus each polled at least
10 times a second.

Measured, each against its own child ``python -m simulators.osdp`` on a fresh pty:

1. baseline, in the same run: the bare pty round trip of a POLL's 9 bytes through the same
   serial stack (pyserial-asyncio-fast) to an echo, no OSDP logic on either side;
2. one reader, polled back to back (``poll_interval=0``): the CP's own round-trip figures
   (command written to valid reply decoded), ``--polls`` of them;
3. 32 readers on one bus with the CP's default settings (each PD polled at most every
   50 ms), for ``--seconds``: polls per second of the least-polled reader.

    python bench/osdp_poll.py [--polls 3000] [--readers 32] [--seconds 5]

The last line printed is JSON: {"poll_median_ms": …, "readers": 32, "min_poll_hz": …}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from drivers.osdp.bus import ControlPanel, PdConfig  # noqa: E402
from drivers.osdp.codes import Command  # noqa: E402
from drivers.osdp.frame import Frame, encode  # noqa: E402
from drivers.osdp.transport import SerialLine  # noqa: E402


class Simulator:
    """A child ``python -m simulators.osdp`` and the port it serves."""

    def __init__(self, proc: asyncio.subprocess.Process, port: str) -> None:
        self.proc, self.port = proc, port

    @classmethod
    async def start(cls, *args: str) -> Simulator:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators.osdp",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        return cls(proc, json.loads(line)["port"])

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def ms(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return statistics.median(values) * 1e3, q[98] * 1e3


async def bare_round_trips(n: int) -> list[float]:
    sim = await Simulator.start("--echo")
    line = await SerialLine.open(sim.port)
    wire = encode(Frame(address=1, code=Command.POLL, sequence=1))
    got = bytearray()
    done: asyncio.Future[None] | None = None

    def received(data: bytes) -> None:
        got.extend(data)
        if done is not None and len(got) >= len(wire) and not done.done():
            done.set_result(None)

    line.on_data(received)
    loop = asyncio.get_running_loop()
    out: list[float] = []
    try:
        for _ in range(n):
            got.clear()
            done = loop.create_future()
            start = time.perf_counter()
            line.write(wire)
            await asyncio.wait_for(done, 5)
            out.append(time.perf_counter() - start)
    finally:
        await line.close()
        await sim.stop()
    return out


async def one_reader(polls: int) -> tuple[list[float], dict[str, int]]:
    sim = await Simulator.start("--readers", "1")
    line = await SerialLine.open(sim.port)
    cp = ControlPanel(line, [PdConfig(1)], poll_interval=0.0)
    pd = cp.pds[1]
    pd.stats.round_trips = deque(maxlen=polls)
    cp.start()
    try:
        deadline = time.monotonic() + 120
        # The CP's own counters are the measurement; looking at them 20 times a second
        # costs the loop nothing that matters.
        while pd.stats.replies < polls + 100 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await cp.close()
        await sim.stop()
    s = pd.stats
    return list(s.round_trips), {"timeouts": s.timeouts, "sequence_errors": s.sequence_errors}


async def many_readers(count: int, seconds: float) -> tuple[list[float], dict[str, int]]:
    sim = await Simulator.start("--readers", str(count))
    line = await SerialLine.open(sim.port)
    cp = ControlPanel(line, [PdConfig(a) for a in range(1, count + 1)])
    cp.start()
    try:
        deadline = time.monotonic() + 30
        while not all(pd.online for pd in cp.pds.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("not every simulated reader came online")
            await asyncio.sleep(0.05)
        before = {a: pd.stats.polls for a, pd in cp.pds.items()}
        start = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - start
        rates = [(pd.stats.polls - before[a]) / elapsed for a, pd in cp.pds.items()]
    finally:
        await cp.close()
        await sim.stop()
    lost = sum(pd.stats.timeouts for pd in cp.pds.values())
    return rates, {"timeouts": lost, "bad_check": cp.decoder.stats.bad_check}


async def run(args: argparse.Namespace) -> dict[str, object]:
    bare = await bare_round_trips(args.polls)
    b50, b99 = ms(bare)
    print(
        f"baseline: bare pty round trip of 9 bytes to an echo: median {b50:.3f} ms, "
        f"p99 {b99:.3f} ms"
    )
    rtts, errs = await one_reader(args.polls)
    p50, p99 = ms(rtts)
    print(
        f"one reader, back to back: POLL round trip median {p50:.3f} ms, p99 {p99:.3f} ms "
        f"over {len(rtts)} polls ({1 / statistics.mean(rtts):,.0f} polls/s); {errs}"
    )
    rates, errs2 = await many_readers(args.readers, args.seconds)
    print(
        f"{args.readers} readers on one bus, default settings (a PD polled at most every "
        f"50 ms): least polled {min(rates):.1f} Hz, most {max(rates):.1f} Hz, "
        f"bus total {sum(rates):,.0f} polls/s; {errs2}"
    )
    print(
        f"poll median {p50:.3f} ms vs bare pty {b50:.3f} ms (target < 2 ms); "
        f"{args.readers} readers each >= {min(rates):.1f} Hz (target >= 10)"
    )
    return {
        "poll_median_ms": round(p50, 3),
        "readers": args.readers,
        "min_poll_hz": round(min(rates), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--polls", type=int, default=3000)
    ap.add_argument("--readers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
