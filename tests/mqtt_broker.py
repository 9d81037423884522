"""A real Mosquitto for tests, started from the project's own deploy/mosquitto/accessd.conf.

Only the listener port, the dynamic-security file's path, the persistence directory and the
log file are rewritten; every other setting is the production one. Use it directly::

    broker = MosquittoBroker.with_users({"accessd": pw, "hq.p1": pw1}, [("hq", "p1")])
    broker.start(); ...; broker.restart(); ...; broker.stop()

or import the fixtures into a test module::

    from tests.mqtt_broker import mosquitto, mqtt_users  # noqa: F401

``mosquitto`` is a started broker whose logins are the service user and the panels of
``PANELS``, with the passwords in ``mqtt_users`` (user name → password) and the generated
rules and client ids. ``MosquittoBroker.from_file`` serves the file `accessd mqtt acl` wrote.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from drivers.mqtt.access import (
    SERVICE_USER,
    BrokerLogin,
    broker_logins,
    hash_password,
    panel_client_id,
    panel_username,
)
from drivers.mqtt.dynsec import dynsec_config
from tests.paths import ROOT

CONFIG = ROOT / "deploy" / "mosquitto" / "accessd.conf"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
#: The panels of the `mosquitto` fixture: two at one site, one at another.
PANELS = (("hq", "p1"), ("hq", "p2"), ("field", "p1"))
#: User name → the one client id the broker lets that panel's login use.
PANEL_CLIENT_IDS = {panel_username(s, p): panel_client_id(s, p) for s, p in PANELS}

_REWRITTEN = ("listener", "plugin_opt_config_file", "persistence_location", "log_dest")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rewrite_config(text: str, *, port: int, security: Path, data: Path, log: Path) -> str:
    """``text`` with the listener on ``port`` (TLS listeners left out) and the file paths
    moved; every other line as it is."""
    out: list[str] = []
    seen: set[str] = set()
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "plugin_opt_config_file": f"plugin_opt_config_file {security}",
        "persistence_location": f"persistence_location {data}/",
        "log_dest": f"log_dest file {log}",
    }
    for line in text.splitlines():
        words = line.split(None, 1)
        key = words[0] if words and not words[0].startswith("#") else ""
        if key not in replacements:
            out.append(line)
        elif key == "listener" and key in seen:
            # A second listener (TLS) would need certificates the tests do not have.
            raise AssertionError(f"{CONFIG}: the test broker serves one listener only")
        elif key not in seen:
            out.append(replacements[key])
        seen.add(key)
    missing = set(_REWRITTEN) - seen
    if missing:
        raise AssertionError(f"{CONFIG} has no {', '.join(sorted(missing))} line to rewrite")
    return "\n".join(out) + "\n"


class MosquittoBroker:
    """One Mosquitto process on a free loopback port, in its own temporary directory."""

    def __init__(self, security_text: str, *, config: Path = CONFIG) -> None:
        # Not under pytest's tmp_path: Mosquitto started as root drops to the mosquitto
        # user, which cannot enter pytest's 0700 directories.
        self.dir = Path(tempfile.mkdtemp(prefix="accessd-mosquitto-"))
        self.port = free_port()
        self.security = self.dir / "dynamic-security.json"
        self.data = self.dir / "data"
        self.log_file = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        self.data.mkdir()
        self.security.write_text(security_text)
        self.conf.write_text(
            rewrite_config(
                config.read_text(),
                port=self.port,
                security=self.security,
                data=self.data,
                log=self.log_file,
            )
        )
        for path in (self.security, self.conf):
            path.chmod(0o600)
        self._give_to_broker_user()
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_file(cls, security: Path) -> MosquittoBroker:
        """A broker serving a dynamic-security file written elsewhere (by the CLI)."""
        return cls(security.read_text())

    @classmethod
    def with_users(
        cls,
        passwords: dict[str, str],
        panels: Iterable[tuple[str, str]],
        extra: Iterable[BrokerLogin] = (),
    ) -> MosquittoBroker:
        """The generated logins of the service and ``panels`` (plus ``extra``), with the
        passwords in ``passwords`` (user name → password)."""
        logins = [*broker_logins(panels, SERVICE_USER), *extra]
        hashes = {user: hash_password(pw) for user, pw in passwords.items()}
        return cls(dynsec_config(logins, hashes))

    def _give_to_broker_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam("mosquitto")
        except KeyError:
            return
        for path in (self.dir, self.data, self.security, self.conf):
            os.chown(path, user.pw_uid, user.pw_gid)

    @property
    def log(self) -> str:
        """What the broker logged so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def start(self, timeout: float = 10.0) -> None:
        """Starts the broker and returns once its port accepts connections."""
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start: {err}\n{self.log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stops the broker (SIGTERM, then SIGKILL) and waits for it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # A paused broker would not act on SIGTERM.
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        """Stops and starts the broker on the same port (persistence kept)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freezes the broker (SIGSTOP): connections stay open, nothing is answered."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log_lines(broker: MosquittoBroker, pattern: str) -> list[str]:
    """The broker's log lines that match ``pattern``."""
    rx = re.compile(pattern)
    return [line for line in broker.log.splitlines() if rx.search(line)]


@pytest.fixture(scope="module")
def mqtt_users() -> dict[str, str]:
    """User name → password of the service user and the panels of PANELS."""
    users = {SERVICE_USER: secrets.token_urlsafe(32)}
    users.update({panel_username(s, p): secrets.token_urlsafe(32) for s, p in PANELS})
    return users


@pytest.fixture(scope="module")
def mosquitto(mqtt_users: dict[str, str]) -> Iterator[MosquittoBroker]:
    """A running broker with the project's config, the users of mqtt_users and the ACL."""
    broker = MosquittoBroker.with_users(mqtt_users, PANELS)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
