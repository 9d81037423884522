"""A flood of bad logins against the good ones: login throttling (accessd/auth/throttle.py).

Runs `accessd serve` on a fresh SQLite database and measures, over HTTP on loopback, a
good login (from 127.0.0.1) and /healthz:
  - on a quiet service (the baseline, measured in the same run);
  - while one address (127.0.0.2) sends --flood wrong passwords at once: held back after
    20, so the rest cost nothing;
  - while --flood addresses (127.0.0.3 …) each try another username once: a spray the
    throttle cannot hold back, so every password is checked, as every one was before;
    the checks run in their own pool, one per core, and an account that logged in from
    its address before is checked in a lane of its own.
Prints the medians and maxima; asserts nothing (timing belongs here, not in tests).

    .venv/bin/python bench/logins.py [--flood 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accessd(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "accessd", *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


async def timed(client: httpx.AsyncClient, method: str, url: str, **kw: object) -> float:
    start = time.perf_counter()
    await client.request(method, url, **kw)  # type: ignore[arg-type]
    return (time.perf_counter() - start) * 1000


async def measure(base: str, flood: int, spray: bool, label: str) -> None:
    good = {"username": "root", "password": PASSWORD}

    async def bad(n: int) -> None:
        address = f"127.0.{3 + n // 250}.{1 + n % 250}" if spray else "127.0.0.2"
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(base_url=base, transport=transport, timeout=300) as c:
            user = f"user{n}" if spray else "victim"
            await c.post("/v1/auth/token", json={"username": user, "password": f"x{n}"})

    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        # The operator has logged in from here before (a known pair gets its own lane).
        await client.post("/v1/auth/token", json=good)
        flooding = [asyncio.create_task(bad(n)) for n in range(flood)]
        await asyncio.sleep(0.2 if flood else 0)
        logins, health = [], []
        for _ in range(5):
            logins.append(await timed(client, "POST", "/v1/auth/token", json=good))
            health.append(await timed(client, "GET", "/healthz"))
        started = time.perf_counter()
        await asyncio.gather(*flooding)
        drained = time.perf_counter() - started
    print(
        f"{label:<40} good login median {statistics.median(logins):7.1f} ms, max "
        f"{max(logins):7.1f} ms | /healthz median {statistics.median(health):6.1f} ms, "
        f"max {max(health):6.1f} ms | flood done {drained:5.1f} s later"
    )


async def run_server(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "accessd",
        "serve",
        env={**env, "ACCESSD_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    server.kill()
    raise SystemExit("accessd serve did not come up")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            ACCESSD_DATABASE_URL=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            ACCESSD_LOG_LEVEL="WARNING",
        )
        accessd(env, "db", "upgrade")
        accessd(
            env,
            *("operators", "create", "--username", "root", "--role", "admin", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
        print(f"{args.flood} wrong passwords meanwhile; 5 good logins and health checks")
        for label, flood, spray in (
            ("quiet (baseline)", 0, False),
            ("flood from one address (throttled)", args.flood, False),
            ("spray from as many addresses (checked)", args.flood, True),
        ):
            port = free_port()
            server = await run_server(env, port)
            try:
                await measure(f"http://127.0.0.1:{port}", flood, spray, label)
            finally:
                server.terminate()
                await asyncio.wait_for(server.wait(), 10)


if __name__ == "__main__":
    asyncio.run(main())
