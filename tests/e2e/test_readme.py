"""The README's "Using it" section, run as a newcomer runs it: every command in its code
blocks, in order, with the installed `accessd` on a fresh SQLite database, from a
directory that holds a copy of policies/examples/. A command that fails fails the test, so
the README cannot drift from the code.

Three commands cannot run as written here, and are adapted:

* ``accessd serve`` runs until stopped, and the README runs it in a second terminal: it is
  started in the background on a free port (not 8000, which may be taken) and stopped at the
  end, after the operator's token has read the imported people through it;
* ``accessd enroll`` needs a PC/SC reader with a card in it, ``accessd edge`` a serial
  OSDP bus and a broker: their options are checked against the command's ``--help``
  (tests/service/pki/test_enrollment.py and tests/e2e/test_edge_gateway.py run them for
  real).

``ANA_PASSWORD`` is set for the README's ``echo "$ANA_PASSWORD" | accessd operators create``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from accessd.demo.mosquitto import free_port
from tests.paths import ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SECTION = "Using it"
#: Subcommands that need hardware: only their options are checked.
NEEDS_HARDWARE = {"enroll": "a PC/SC reader with a card", "edge": "a serial OSDP bus"}
_RUNS_ACCESSD = re.compile(r"(^|\|\s*)accessd(\s|$)")


def section(text: str, title: str) -> str:
    """The text under ``## title`` up to the next second-level heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def code_blocks(text: str) -> Iterator[list[str]]:
    """Fenced blocks and indented (four spaces, after a blank line) blocks, as lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            yield lines[i + 1 : end]
            i = end + 1
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            yield block
        else:
            i += 1


def commands(readme: str) -> list[str]:
    """Every logical line (backslash continuations joined) of the section's code blocks
    that runs accessd; the rest are diagrams and HTTP exchanges."""
    found: list[str] = []
    for block in code_blocks(section(readme, SECTION)):
        logical = "\n".join(block).replace("\\\n", " ").splitlines()
        found.extend(line.strip() for line in logical if _RUNS_ACCESSD.search(line))
    return found


def subcommand(command: str) -> str:
    words = shlex.split(command.split("|")[-1], comments=True)
    return words[1] if len(words) > 1 and words[0] == "accessd" else ""


def test_the_section_yields_the_commands_a_newcomer_types() -> None:
    found = commands(README.read_text())
    assert found[0] == "accessd --help"
    assert any(subcommand(c) == "import" for c in found)
    # The people the example policy names are imported before it is applied.
    first_import = next(i for i, c in enumerate(found) if subcommand(c) == "import")
    first_apply = next(i for i, c in enumerate(found) if c.startswith("accessd policy apply"))
    assert first_import < first_apply
    assert {subcommand(c) for c in found} >= {"serve", *NEEDS_HARDWARE}


def wait_healthy(
    url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"accessd serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail("accessd serve did not answer /healthz")


def get_json(url: str, token: str) -> object:
    ask = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(ask, timeout=10) as answer:
        return json.loads(answer.read())


def test_the_readme_commands_run_in_order_on_a_fresh_database(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "policies" / "examples", work / "policies" / "examples")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSD_")}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "ACCESSD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'accessd.db'}",
        "ACCESSD_PORT": str(port),
        "ANA_PASSWORD": "correct horse battery staple",
    }
    server: subprocess.Popen[bytes] | None = None
    log = tmp_path / "serve.log"
    outputs: dict[str, str] = {}
    try:
        for command in commands(README.read_text()):
            sub = subcommand(command)
            if sub == "serve":
                with log.open("wb") as stream:
                    # exec: the pid is accessd's own, so stopping it needs no process group.
                    server = subprocess.Popen(
                        ["bash", "-c", f"exec {command}"],
                        cwd=work,
                        env=env,
                        stdout=stream,
                        stderr=subprocess.STDOUT,
                    )
                wait_healthy(f"http://127.0.0.1:{port}", server, log)
                continue
            if sub in NEEDS_HARDWARE:
                help_text = subprocess.run(
                    [str(BIN / "accessd"), sub, "--help"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                options = {w.split("=")[0] for w in shlex.split(command) if w.startswith("--")}
                unknown = {o for o in options if o not in help_text}
                assert not unknown, f"{command!r}: accessd {sub} has no {sorted(unknown)}"
                continue
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{command!r} failed:\n{done.stdout}\n{done.stderr}"
            outputs[" ".join(shlex.split(command, comments=True))] = done.stdout
        assert server is not None, "the README starts no server"
        token = outputs["accessd operators token ana"].strip()
        people = get_json(f"http://127.0.0.1:{port}/v1/people?limit=100", token)
        assert isinstance(people, dict)
        names = {p["external_id"] for p in people["items"]}
        assert {"E1001", "E2001", "V4001"} <= names
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    # `accessd policy export > current.yaml` wrote the applied policy where the reader is.
    assert "business-hours" in (work / "current.yaml").read_text()
