"""The libosdp reference peer (tests/drivers/osdp/libosdp_peer.py) works against itself.

A libosdp CP and a libosdp PD, each on the slave of its own pty pair, with the two masters
joined by a forwarding thread here (a null modem): the CP must see the PD come online,
plain and over a secure channel, card reads and keys must reach the CP and commands the PD.
The forwarder also parses the frames going by, so the test prints how long the PD took to
come online and how often libosdp's CP polls (figures only: nothing timed is asserted).

Needs .venv-libosdp (tests/libosdp_env.sh, which `make test` runs): skipped without it on a
developer's machine, a failure in CI.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import select
import statistics
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.paths import ROOT

PEER = ROOT / "tests" / "drivers" / "osdp" / "libosdp_peer.py"
VENV_PYTHON = ROOT / ".venv-libosdp" / "bin" / "python"
HOW_TO = "create it with `bash tests/libosdp_env.sh` (`make test` does)"

if not VENV_PYTHON.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{VENV_PYTHON} is missing in CI: {HOW_TO}", pytrace=False)
    pytest.skip(f"no {VENV_PYTHON}: {HOW_TO}", allow_module_level=True)

SCBK = "00112233445566778899aabbccddeeff"
OTHER_SCBK = "ffeeddccbbaa99887766554433221100"
ADDRESS = 5
# Generous: libosdp retries a failed secure-channel handshake with SCBK-D, then KEYSET.
WAIT = 15.0

Event = dict[str, Any]


@dataclass
class Frame:
    """One OSDP frame seen on the wire: when, which way, and its address byte."""

    at: float
    from_cp: bool
    address: int
    length: int


class NullModem:
    """Two pty pairs whose masters a thread joins, and a parser of the frames going by."""

    def __init__(self) -> None:
        self.cp_master, self.cp_slave = os.openpty()
        self.pd_master, self.pd_slave = os.openpty()
        for fd in (self.cp_slave, self.pd_slave):
            tty.setraw(fd)  # before a peer opens it: nothing may be echoed or translated
        self.frames: list[Frame] = []
        self._buffers = {True: b"", False: b""}
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="null-modem", daemon=True)
        self._thread.start()

    @property
    def cp_tty(self) -> str:
        return os.ttyname(self.cp_slave)

    @property
    def pd_tty(self) -> str:
        return os.ttyname(self.pd_slave)

    def _run(self) -> None:
        peers = {self.cp_master: self.pd_master, self.pd_master: self.cp_master}
        while True:
            ready, _, _ = select.select([*peers, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO while no one has the slave open
                    continue
                self._parse(fd == self.cp_master, data)
                os.write(peers[fd], data)

    def _parse(self, from_cp: bool, data: bytes) -> None:
        buf = self._buffers[from_cp] + data
        now = time.monotonic()
        while True:
            start = buf.find(b"\x53")
            if start < 0 or len(buf) - start < 4:
                break
            length = buf[start + 2] | buf[start + 3] << 8
            if length < 8 or length > 1024:
                buf = buf[start + 1 :]
                continue
            if len(buf) - start < length:
                break
            self.frames.append(Frame(now, from_cp, buf[start + 1], length))
            buf = buf[start + length :]
        self._buffers[from_cp] = buf[-1024:]

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(5)
        for fd in (
            self.cp_master,
            self.cp_slave,
            self.pd_master,
            self.pd_slave,
            self._stop_r,
            self._stop_w,
        ):
            os.close(fd)


@dataclass
class PeerProcess:
    """One libosdp peer: its JSON-lines events in a queue, commands written to stdin."""

    proc: subprocess.Popen[bytes]
    ready_at: float = 0.0
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    seen: list[Event] = field(default_factory=list)
    stderr: list[bytes] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    result: tuple[int, str] | None = None

    @classmethod
    def start(cls, role: str, tty_path: str, *options: str) -> PeerProcess:
        args = [str(VENV_PYTHON), str(PEER), "--role", role, "--tty", tty_path]
        args += ["--address", str(ADDRESS), *options]
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        peer = cls(proc)
        # Both pipes drained all along: a full stderr pipe would stall libosdp's logging.
        for target in (peer._read_events, peer._read_log):
            thread = threading.Thread(target=target, name=f"libosdp-{role}", daemon=True)
            thread.start()
            peer.threads.append(thread)
        return peer

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            event["_at"] = time.monotonic()
            self.events.put(event)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, want: Callable[[Event], bool], what: str, timeout: float = WAIT) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(left, 0))
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout} s; saw {self.seen}") from None
            self.seen.append(event)
            if want(event):
                return event

    def wait_event(self, name: str, **fields: Any) -> Event:
        def match(event: Event) -> bool:
            if event["event"] == "error":
                raise AssertionError(f"peer error while waiting for {name}: {event}")
            return event["event"] == name and all(event.get(k) == v for k, v in fields.items())

        return self.wait_for(match, f"{name} {fields}")

    def wait_events(self, *wanted: tuple[str, dict[str, Any]]) -> None:
        """Waits until each (event name, fields) has been seen, in any order."""
        left = list(wanted)

        def match(event: Event) -> bool:
            for name, fields in left:
                if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                    left.remove((name, fields))
                    break
            return not left

        self.wait_for(match, f"all of {wanted}")

    def stop(self) -> tuple[int, str]:
        """Quits the peer (killing it if it hangs); its exit code and stderr. Idempotent."""
        if self.result is not None:
            return self.result
        stdin = self.proc.stdin
        if self.proc.poll() is None and stdin is not None and not stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.send(cmd="quit")
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        for thread in self.threads:
            thread.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.result = (code, b"".join(self.stderr).decode(errors="replace"))
        return self.result


@dataclass
class Pair:
    modem: NullModem
    peers: list[PeerProcess] = field(default_factory=list)

    def cp(self, *options: str) -> PeerProcess:
        peer = PeerProcess.start("cp", self.modem.cp_tty, *options)
        self.peers.append(peer)
        peer.ready_at = peer.wait_event("ready", role="cp")["_at"]
        return peer

    def pd(self, *options: str) -> PeerProcess:
        peer = PeerProcess.start("pd", self.modem.pd_tty, *options)
        self.peers.append(peer)
        peer.ready_at = peer.wait_event("ready", role="pd")["_at"]
        return peer


@pytest.fixture
def pair() -> Iterator[Pair]:
    link = Pair(NullModem())
    try:
        yield link
    finally:
        results = [peer.stop() for peer in link.peers]
        link.modem.close()
    for code, stderr in results:
        assert code == 0, stderr
        assert "Traceback" not in stderr, stderr
        assert "Error in user" not in stderr, stderr  # the wrapper's word for a callback error
        assert SCBK not in stderr.lower()
        assert OTHER_SCBK not in stderr.lower()


def report(label: str, pair: Pair, cp: PeerProcess, online: Event) -> None:
    """Prints the time to online, the idle poll interval and the PD's reply time."""
    frames = [f for f in pair.modem.frames if f.at > online["_at"]]
    polls = [f.at for f in frames if f.from_cp]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    replies = [b.at - a.at for a, b in itertools.pairwise(frames) if a.from_cp and not b.from_cp]

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms" if values else "n/a"

    print(
        f"\nlibosdp {label}: online {(online['_at'] - cp.ready_at) * 1000:.0f} ms after the CP "
        f"was ready; idle, the CP polls every {ms(gaps)} and the PD replies in {ms(replies)} "
        f"(medians of {len(gaps)})",
        file=sys.stderr,
    )


def test_pd_comes_online_without_secure_channel(pair: Pair) -> None:
    pd = pair.pd("--no-secure")
    cp = pair.cp("--no-secure")
    online = cp.wait_event("status", online=True)
    assert online["secure"] is False
    time.sleep(1.0)
    report("plain", pair, cp, online)
    pd.wait_event("status", online=True, secure=False)
    assert {f.address for f in pair.modem.frames if f.from_cp} == {ADDRESS}
    assert {f.address for f in pair.modem.frames if not f.from_cp} == {ADDRESS | 0x80}


def test_cp_reads_the_pd_identity_and_capabilities(pair: Pair) -> None:
    pair.pd("--no-secure")
    cp = pair.cp("--no-secure")
    info = cp.wait_event("pd_info")
    assert info["id"]["vendor_code"] == 0xACCE55
    assert info["id"]["serial_number"] == 0x00C0FFEE
    assert info["capabilities"]["card_data_format"] == [1, 0]
    assert info["capabilities"]["led_control"] == [1, 2]
    assert info["capabilities"]["communication_security"] == [1, 0]  # added by libosdp
    cp.wait_event("status", online=True)


def test_secure_channel_with_a_shared_scbk(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK)
    cp = pair.cp("--scbk", SCBK)
    online = cp.wait_event("status", online=True, secure=True)
    assert online["scbkd"] is False
    time.sleep(1.0)
    report("secure", pair, cp, online)
    pd.wait_event("status", online=True, secure=True)


def test_card_read_at_the_pd_reaches_the_cp(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK)
    cp = pair.cp("--scbk", SCBK)
    cp.wait_event("status", online=True, secure=True)
    pd.send(cmd="card", format="wiegand", bits=26, data="02c0ffc0")
    pd.wait_event("sent", cmd="card")
    card = cp.wait_event("card")
    assert (card["format"], card["bits"], card["data"]) == ("wiegand", 26, "02c0ffc0")
    pd.wait_event("completed", cmd="card", status="ok")
    pd.send(cmd="keypad", digits="1234#")
    keys = cp.wait_event("keypad")
    assert keys["digits"] == "1234#"
    assert keys["data"] == "313233340d"


def test_commands_from_the_cp_reach_the_pd(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK, "--mfg-reply", "echo")
    cp = pair.cp("--scbk", SCBK)
    cp.wait_event("status", online=True, secure=True)

    cp.send(cmd="led", led_number=1, on_color="red", on_count=5)
    cp.wait_event("sent", cmd="led")
    led = pd.wait_event("command", kind="led")
    assert (led["led_number"], led["on_color"], led["on_count"]) == (1, "red", 5)
    cp.wait_event("completed", cmd="led", status="ok")

    cp.send(cmd="buzzer", on_count=3, rep_count=2)
    assert pd.wait_event("command", kind="buzzer")["rep_count"] == 2
    cp.send(cmd="text", data="WELCOME")
    assert pd.wait_event("command", kind="text")["data"] == "WELCOME"
    cp.send(cmd="output", output_no=1, control_code=2)
    assert pd.wait_event("command", kind="output")["output_no"] == 1
    cp.send(cmd="mfg", vendor_code=0x123456, data="c0ffee")
    assert pd.wait_event("command", kind="mfg")["data"] == "c0ffee"
    assert cp.wait_event("mfg_reply")["data"] == "c0ffee"


def test_cp_refuses_a_malformed_command(pair: Pair) -> None:
    pair.pd("--no-secure")
    cp = pair.cp("--no-secure")
    cp.wait_event("status", online=True)
    cp.send(cmd="led", colour="red")
    error = cp.wait_for(lambda e: e["event"] == "error", "error")
    assert error["cmd"] == "led"
    assert "colour" in error["detail"]


def test_install_mode_pd_takes_the_cp_scbk_by_keyset(pair: Pair) -> None:
    pd = pair.pd("--install-mode")
    cp = pair.cp("--scbk", SCBK)
    keyset = pd.wait_event("command", kind="keyset")
    assert keyset == {**keyset, "type": 1, "key_length": 16}
    assert "data" not in keyset
    # After the KEYSET the CP restarts the secure channel with the new key.
    cp.wait_event("status", online=True, secure=True, scbkd=False)


def test_keyset_from_the_cp_rekeys_the_session(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK)
    cp = pair.cp("--scbk", SCBK)
    cp.wait_event("status", online=True, secure=True)
    cp.send(cmd="keyset", scbk=OTHER_SCBK)
    cp.wait_event("sent", cmd="keyset")
    assert pd.wait_event("command", kind="keyset")["key_length"] == 16
    # The CP drops the secure channel and starts one with the new key.
    cp.wait_events(("completed", {"cmd": "keyset", "status": "ok"}), ("status", {"secure": False}))
    cp.wait_event("status", online=True, secure=True)
    assert cp.stop()[0] == 0
    # A CP that knows only the new key gets a secure channel too: the PD did take it.
    new_cp = pair.cp("--scbk", OTHER_SCBK, "--enforce-secure")
    new_cp.wait_event("status", online=True, secure=True)
    for peer in (pd, cp, new_cp):
        assert not any(OTHER_SCBK in json.dumps(e) for e in peer.seen)


@pytest.mark.parametrize("pd_options", [("--scbk", SCBK), ("--no-secure",)])
def test_cp_falls_back_to_plain_when_the_pd_has_another_key(
    pair: Pair, pd_options: tuple[str, ...]
) -> None:
    pd = pair.pd(*pd_options)
    cp = pair.cp("--scbk", OTHER_SCBK)
    online = cp.wait_event("status", online=True)
    assert online["secure"] is False
    pd.wait_event("status", online=True, secure=False)


def test_peer_exits_cleanly_on_sigterm_and_on_eof(pair: Pair) -> None:
    pd = pair.pd("--no-secure")
    cp = pair.cp("--no-secure")
    cp.wait_event("status", online=True)
    pd.proc.terminate()
    assert pd.proc.wait(10) == 0
    pd.wait_event("exit", reason="signal")
    assert cp.proc.stdin is not None
    cp.proc.stdin.close()
    assert cp.proc.wait(10) == 0
    cp.wait_event("exit", reason="eof")


def test_status_reports_reach_the_cp(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK)
    cp = pair.cp("--scbk", SCBK)
    cp.wait_event("status", online=True, secure=True)
    cp.send(cmd="status", type="local")
    assert pd.wait_event("command", kind="status")["type"] == "local"
    assert cp.wait_event("status_report")["report"] == "0000"  # the binding cannot fill it
    pd.send(cmd="status", type="local", report="0100")
    assert cp.wait_event("status_report") == {**cp.seen[-1], "type": "local", "report": "0100"}


def test_a_nak_takes_the_pd_offline_until_reconnect(pair: Pair) -> None:
    pd = pair.pd("--scbk", SCBK)
    cp = pair.cp("--scbk", SCBK)
    cp.wait_event("status", online=True, secure=True)
    cp.send(cmd="led", on_count=0, off_count=0)  # libosdp's PD NAKs a steady LED of no time
    cp.wait_events(("completed", {"cmd": "led", "status": "failed"}), ("status", {"online": False}))
    cp.send(cmd="reconnect")
    cp.wait_event("status", online=True, secure=True)
    cp.send(cmd="buzzer")
    pd.wait_event("command", kind="buzzer")
