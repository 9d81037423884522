"""tests/task_leaks.py fails an async test that leaves a task running, and only that one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import ROOT

LEAKY = """
import asyncio

async def test_leaves_a_poller_behind():
    async def poller():
        while True:
            await asyncio.sleep(0.01)
    asyncio.get_running_loop().create_task(poller(), name="forgotten-poller")

async def test_stops_what_it_started():
    task = asyncio.get_running_loop().create_task(asyncio.sleep(10), name="stopped")
    task.cancel()

async def test_lets_its_task_finish():
    asyncio.get_running_loop().create_task(asyncio.sleep(0.05), name="finishing")

def test_sync_tests_are_not_checked():
    pass
"""


def test_a_test_that_leaves_a_task_running_fails_and_names_it(tmp_path: Path) -> None:
    module = tmp_path / "test_leaky.py"
    module.write_text(LEAKY)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.task_leaks",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            "-q",
            str(module),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    # A failure in the teardown is a pytest "error" of the test, which itself passed.
    assert "4 passed, 1 error" in out, out
    assert "ERROR " in out and "test_leaky.py::test_leaves_a_poller_behind" in out, out
    assert "left 1 task(s) running: forgotten-poller" in out, out
