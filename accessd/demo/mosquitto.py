"""The demo's Mosquitto: the project's deploy/mosquitto/accessd.conf on a local port, with
the dynamic-security file `accessd.gateway.acl.write_broker_files` wrote.

Only the listener, the file path, the persistence directory and the log go elsewhere (the
same lines tests/mqtt_broker.py rewrites); everything else is the production config.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: accessd/demo/mosquitto.py -> the repository's root (deploy/ is not a package).
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "accessd.conf"


def mosquitto_binary() -> str | None:
    """The mosquitto program, also where Debian puts it (sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next(
        (p for p in ("/usr/sbin/mosquitto", "/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_config(text: str, *, port: int, security: Path, data: Path, log: Path) -> str:
    """``text`` with one loopback listener on ``port`` and the files moved."""
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "plugin_opt_config_file": f"plugin_opt_config_file {security}",
        "persistence_location": f"persistence_location {data}/",
        "log_dest": f"log_dest file {log}",
    }
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        words = line.split(None, 1)
        key = words[0] if words and not words[0].startswith("#") else ""
        if key not in replacements:
            out.append(line)
        elif key not in seen:  # a second listener (TLS, needing certificates) is left out
            out.append(replacements[key])
        seen.add(key)
    return "\n".join(out) + "\n"


class DemoBroker:
    """Mosquitto on a loopback port, in a temporary directory of its own (not the demo's:
    a broker started as root drops to the mosquitto user, which must read its files)."""

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="accessd-demo-broker-"))
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _prepare(self, security: Path) -> Path:
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        copy = self.dir / security.name
        copy.write_text(security.read_text())
        conf.write_text(
            local_config(
                CONFIG.read_text(),
                port=self.port,
                security=copy,
                data=data,
                log=self.log,
            )
        )
        for path in (copy, conf):
            path.chmod(0o600)
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                user = pwd.getpwnam("mosquitto")
                for path in (self.dir, data, copy, conf):
                    os.chown(path, user.pw_uid, user.pw_gid)
        return conf

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, security: Path, timeout: float = 10.0) -> None:
        """Starts it with a copy of the dynamic-security file ``security``; returns once the
        port accepts connections, RuntimeError otherwise."""
        conf = self._prepare(security)
        # Its own process group: a terminal's Ctrl-C is the demo's to handle, in order.
        self.proc = subprocess.Popen(  # noqa: S603 - our config, no shell
            [self.binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
        if wait_until_listening(self.proc, self.port, timeout):
            return
        self.stop()
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        raise RuntimeError(f"mosquitto did not start on port {self.port}: {log[-2000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Whether ``proc`` accepts connections on the loopback ``port`` within ``timeout``
    seconds (False as soon as it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return True
        time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; nothing for a process already gone."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
