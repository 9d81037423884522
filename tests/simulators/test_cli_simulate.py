"""`accessd simulate panels`: the simulator as a child process, its arguments, signals and
exit status passed through unchanged."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from accessd.cli.simulate import add_simulate_commands


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="accessd")
    parser.add_argument("--config")
    add_simulate_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def simulate(*argv: str) -> int:
    args = parse("simulate", "panels", *argv)
    status: int = args.func(args)
    return status


def test_every_word_after_panels_goes_to_the_simulator() -> None:
    args = parse("--config", "x.toml", "simulate", "panels", "--count", "3", "-v", "--help")
    assert args.config == "x.toml"
    assert args.args == ["--count", "3", "-v", "--help"]


def test_help_is_the_simulators_own(capfd: pytest.CaptureFixture[str]) -> None:
    assert simulate("--help") == 0
    out = capfd.readouterr().out
    assert "python -m simulators.panel" in out
    for option in ("--broker", "--site", "--credentials", "--passwords", "--scenario"):
        assert option in out


def test_bad_arguments_give_the_simulators_exit_2(capfd: pytest.CaptureFixture[str]) -> None:
    assert simulate("--site", "HQ") == 2  # no --broker, no --credentials
    assert "required" in capfd.readouterr().err
    assert simulate("--broker", "nowhere", "--site", "HQ", "--credentials", "c.json") == 2
    assert "HOST:PORT" in capfd.readouterr().err


def test_an_unreadable_credentials_file_is_the_simulators_exit_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "cards.json"
    bad.write_text("{}")
    assert simulate("--broker", "127.0.0.1:9", "--site", "HQ", "--credentials", str(bad)) == 2
    assert "not a credentials file" in capfd.readouterr().err


CHILD = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path

    def leave(signum, frame):
        Path(sys.argv[1]).write_text(signal.Signals(signum).name)
        sys.exit(7)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    Path(sys.argv[1] + ".ready").write_text("")
    time.sleep(60)
    sys.exit(1)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_reaches_the_child_and_its_status_comes_back(
    tmp_path: Path, sig: signal.Signals
) -> None:
    (tmp_path / "fake_sim.py").write_text(CHILD)
    marker = tmp_path / "got"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from accessd.cli.simulate import run_module; "
            "sys.exit(run_module('fake_sim', sys.argv[1:]))",
            str(marker),
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "got.ready").exists():
            assert parent.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        parent.send_signal(sig)
        assert parent.wait(timeout=20) == 7
        assert marker.read_text() == sig.name
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_child_killed_by_a_signal_is_128_plus_it(tmp_path: Path) -> None:
    (tmp_path / "suicide.py").write_text(
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from accessd.cli.simulate import run_module; "
            "sys.exit(run_module('suicide', []))",
        ],
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 128 + signal.SIGKILL
