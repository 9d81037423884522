"""The panel-side processes as the service side sees them: started, spoken to in JSON
lines, and stopped."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .names import ECHO_USER, REVOKED, card_uuid, fasc_n

#: Cache panels per panel-side process, so that their decoding of a delta uses both cores.
PANELS_PER_PROCESS = 250


class Child:
    """The panel side, spoken to in JSON lines over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, doc: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(doc) + "\n").encode())
        await self.proc.stdin.drain()

    async def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the panel side exited")
        doc: dict[str, Any] = json.loads(line)
        return doc

    async def ask(self, doc: dict[str, Any]) -> dict[str, Any]:
        await self.send(doc)
        return await self.recv()


class PanelSides:
    """The first process drives the requester panels; each of the others holds up to
    ``PANELS_PER_PROCESS`` cache panels. ``script`` is run with ``--panel-side``."""

    def __init__(self, script: Path) -> None:
        self.script = script
        self.children: list[Child] = []

    @property
    def driver(self) -> Child:
        return self.children[0]

    @property
    def fleets(self) -> list[Child]:
        return self.children[1:]

    async def start(
        self, *, port: int, passwords: dict[str, str], people: int, requesters: int, panels: int
    ) -> int:
        """Until every process is ready; returns how many requester panels connected."""
        common = {
            "port": port,
            "people": people,
            "requesters": requesters,
            "first_reader": 1,
            "passwords": passwords,
            "echo_password": passwords[ECHO_USER],
            "target_uuid": card_uuid(REVOKED),
            "target_fasc_n": fasc_n(REVOKED),
        }
        step = PANELS_PER_PROCESS
        ranges = [(a, min(a + step, panels)) for a in range(0, panels, step)]
        for k, span in enumerate([(0, 0), *ranges]):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(self.script),
                "--panel-side",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=2**24,
            )
            self.children.append(Child(proc))
            await self.children[-1].send(common | {"drive": k == 0, "cache_range": span})
        ready = await self.driver.recv()
        for f in self.fleets:
            await f.recv()
        return int(ready["ready"])

    async def run(self, target: str, n: int, in_flight: int) -> dict[str, Any]:
        """``n`` requests to ``target`` (an echo or the gateway), ``in_flight`` outstanding."""
        return await self.driver.ask(
            {"cmd": "run", "target": target, "n": n, "in_flight": in_flight}
        )

    async def caches(self) -> list[dict[str, Any]]:
        """Connects the cache panels; once they hold their snapshots, what each fleet has."""
        return await asyncio.gather(*(f.ask({"cmd": "caches"}) for f in self.fleets))

    async def arm(self) -> None:
        """From now on a delta removing the credential is timed."""
        await asyncio.gather(*(f.ask({"cmd": "arm"}) for f in self.fleets))

    async def collect(self, t0: float, seconds: float) -> list[dict[str, Any]]:
        """When each cache panel decoded the delta, from ``t0`` (CLOCK_MONOTONIC), waiting
        at most ``seconds`` for it."""
        return await asyncio.gather(
            *(f.ask({"cmd": "collect", "t0": t0, "timeout": seconds}) for f in self.fleets)
        )

    async def quit(self) -> None:
        for c in self.children:
            await c.ask({"cmd": "quit"})
            await c.proc.wait()

    async def kill(self) -> None:
        """What has not quit."""
        for c in self.children:
            if c.proc.returncode is None:
                c.proc.kill()
                await c.proc.wait()
