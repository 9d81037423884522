"""A TCP proxy in front of a real server, to fail it on cue: refuse, cut, or hang.

The service under test connects to the proxy as it would to PostgreSQL; the test then
makes the database "go away" in the ways that happen in production, without touching the
shared server: `refuse()` closes every connection and the listening port (a server that
is down), `hang()` keeps every connection open but passes no byte either way (a server
stopped with SIGSTOP, a network partition), `restore()` brings it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from drivers.tasks import TaskSet

Mode = Literal["pass", "hang", "refuse"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode: Mode = "pass"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks = TaskSet("tcp proxy")
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self._stop_listening()
        self._cut()
        await self._tasks.close(grace=2.0)

    def url(self, dbname: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{dbname}"

    async def refuse(self) -> None:
        """The server is down: every connection cut, new ones refused."""
        self.mode = "refuse"
        await self._stop_listening()
        self._cut()

    def hang(self) -> None:
        """The server stops answering: connections stay open, nothing moves."""
        self.mode = "hang"
        self._flowing.clear()

    async def restore(self) -> None:
        """Back to normal; connections held through a hang resume, as after SIGCONT."""
        self.mode = "pass"
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        self._tasks.spawn(self._pipe(reader, up_writer))
        self._tasks.spawn(self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort()
