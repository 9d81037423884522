"""The demo's broker where Mosquitto cannot be installed: amqtt, a pure-Python MQTT broker
(the optional ``embedded-broker`` extra), in a child process on a loopback port.

It has the logins and the per-panel ACL of `accessd mqtt acl`: the same passwords, hashed
with argon2id (the format amqtt's password-file plugin reads, not Mosquitto's ``$7$``), and
the same rules (`drivers.mqtt.access`) as amqtt's subscribe and publish lists. What it lacks
against Mosquitto and deploy/mosquitto/accessd.conf, and how the demo lives with it:

* MQTT 3.1.1 only (amqtt refuses protocol level 5): the service and the panels speak 3.1.1;
* no shared subscriptions (``$share/...`` is taken as a literal filter that matches
  nothing): the gateway subscribes to the requests plainly (``mqtt_shared_requests`` off),
  which is right for the demo's single instance;
* no persistence: retained messages and kept sessions end with the broker;
* no client ids bound to logins (Mosquitto's dynamic-security plugin does that): a panel
  could connect with another's client id. The demo's panels are its own simulators.

amqtt 0.12.1 also sends a client that connects the retained messages matching *any*
client's subscriptions, past the ACL: every panel would be sent every other panel's
credential snapshot. `_confined_broker` sends a client retained messages only for its own
subscriptions (tests/e2e/test_demo_embedded.py fails without it).

Run as ``python -m accessd.demo.embedded_broker CONFIG.json``; `EmbeddedBroker` writes the
config and starts and stops it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from accessd.demo.mosquitto import stop_process, wait_until_listening
from drivers.mqtt.access import SERVICE_USER, panel_rules, panel_username, service_rules

#: The passwords are 256-bit random secrets (accessd.gateway.acl.new_password), which no
#: work factor makes easier or harder to guess; amqtt checks them in its one event loop.
_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def embedded_broker_available() -> bool:
    """Whether amqtt (the ``embedded-broker`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("amqtt") is not None


def password_file(passwords: dict[str, str]) -> str:
    """amqtt's password file: ``user:<argon2id hash>`` lines."""
    return "".join(f"{user}:{_HASHER.hash(pw)}\n" for user, pw in sorted(passwords.items()))


def acl_lists(
    panels: Iterable[tuple[str, str]], service_user: str = SERVICE_USER
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(subscribe, publish) topic filters per user, from the rules Mosquitto's ACL has; a
    user with no list may do neither."""
    subscribe: dict[str, list[str]] = {}
    publish: dict[str, list[str]] = {}
    users = [(service_user, service_rules())]
    users += [(panel_username(site, panel), panel_rules(site, panel)) for site, panel in panels]
    for user, rules in users:
        for access, topic in rules:
            if access in ("read", "readwrite"):
                subscribe.setdefault(user, []).append(topic)
            if access in ("write", "readwrite"):
                publish.setdefault(user, []).append(topic)
    return subscribe, publish


def broker_config(
    port: int, passwd: Path, panels: Iterable[tuple[str, str]], service_user: str = SERVICE_USER
) -> dict[str, Any]:
    """amqtt's configuration: one loopback listener, logins required, the topic ACL."""
    subscribe, publish = acl_lists(panels, service_user)
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            # No anonymous plugin: a client without a valid login is refused.
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
            "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                "acl": subscribe,
                "publish_acl": publish,
            },
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """amqtt in a child process on a loopback port, in a temporary directory of its own."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="accessd-demo-amqtt-"))
        self.log = self.dir / "amqtt.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, credentials: dict[str, Any], timeout: float = 20.0) -> None:
        """Starts it with the logins of ``credentials`` (the document `accessd mqtt acl`
        writes to credentials.json); returns once the port accepts connections,
        RuntimeError otherwise."""
        service = credentials["service"]
        panels = [(p["site"], p["panel"]) for p in credentials["panels"]]
        passwords = {service["username"]: service["password"]}
        passwords.update({p["username"]: p["password"] for p in credentials["panels"]})
        passwd = self.dir / "passwd"
        conf = self.dir / "amqtt.json"
        for path, text in (
            (passwd, password_file(passwords)),
            (conf, json.dumps(broker_config(self.port, passwd, panels, service["username"]))),
        ):
            path.touch(mode=0o600)
            path.write_text(text)
        with self.log.open("wb") as log:
            # Its own process group: a terminal's Ctrl-C is the demo's to handle, in order.
            self.proc = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [sys.executable, "-m", "accessd.demo.embedded_broker", str(conf)],
                stdout=log,
                stderr=log,
                process_group=0,
            )
        if wait_until_listening(self.proc, self.port, timeout):
            return
        text = self.log.read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"the embedded broker did not start on port {self.port}: {text[-2000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def _confined_broker(config: dict[str, Any]) -> Any:
    """An amqtt Broker that sends retained messages only for the client's own
    subscriptions (see the module docstring)."""
    from amqtt.broker import Broker

    class ConfinedBroker(Broker):  # type: ignore[misc]  # amqtt has no type information
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            topic_filter = subscription[0]
            own = [
                qos
                for subscriber, qos in self._subscriptions.get(topic_filter, ())
                if subscriber.client_id == session.client_id
            ]
            if own:
                await super()._publish_retained_messages_for_subscription(
                    (topic_filter, own[0]), session
                )

    return ConfinedBroker(config)


async def serve(config: dict[str, Any]) -> None:
    """Runs the broker until SIGTERM or SIGINT."""
    broker = _confined_broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m accessd.demo.embedded_broker CONFIG.json", file=sys.stderr)
        return 2
    asyncio.run(serve(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
