"""Broker logins of the panel protocol: user names, client ids, topic rules, password hashes.

Each panel logs in as ``<site>.<panel>`` (`panel_username`; ``.`` never occurs in a
segment, so the name is unambiguous), with the one client id ``panel.<site>.<panel>``
(`panel_client_id`), and may touch only its own topics: it writes what it reports (status,
birth, requests, events, door state, command results) and reads what it is told (replies,
commands, its credential cache). The service user reads and writes all of ``ac/v1/#`` and
takes requests through the shared subscription; its client id is not bound, because every
accessd instance has two connections of its own under the one login.

The rules are (access, topic filter) pairs, ``read`` / ``write`` / ``readwrite`` as in
Mosquitto's acl_file; `drivers.mqtt.dynsec` turns them into what the broker enforces, and
accessd.demo.embedded_broker into amqtt's lists.

Passwords are hashed as Mosquitto checks them, PBKDF2-HMAC-SHA512 with a 12-byte salt and
a 64-byte result (`PasswordHash`); the dynamic-security file stores the three parts, and
a ``mosquitto_passwd`` file (the layout before it) writes them as ``$7$<iterations>$<b64
salt>$<b64 hash>``, which `parse_password_file` still reads so passwords survive the move.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass

from drivers.mqtt.topics import SERVICE_REQUESTS, PanelTopics, check_segment

SERVICE_USER = "accessd"

#: What a panel publishes, under its own prefix.
PANEL_WRITES = ("status", "birth", "req/#", "evt/#", "state/#", "res/#")
#: What a panel subscribes to, under its own prefix.
PANEL_READS = ("rsp", "ack", "cmd/#", "cred/#")

#: The broker runs PBKDF2 on every CONNECT in its single thread; after a broker restart
#: hundreds of panels log in at once. The passwords are 256-bit random secrets, which no
#: iteration count makes easier or harder to guess, so the count stays low (mosquitto_passwd
#: and the dynamic-security plugin themselves default to 101).
ITERATIONS = 1000
#: Mosquitto's fixed salt and hash sizes (its dynamic-security plugin skips a client whose
#: salt or hash has any other length).
SALT_LEN = 12
HASH_LEN = 64

Rule = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password as Mosquitto checks it: PBKDF2-HMAC-SHA512(password, salt, iterations)."""

    salt: bytes
    digest: bytes
    iterations: int

    def verify(self, password: str) -> bool:
        """Whether ``password`` is the one hashed (constant-time comparison)."""
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), self.salt, self.iterations, len(self.digest)
        )
        return hmac.compare_digest(got, self.digest)


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    """One broker user: its topic rules and, when bound, the only client id it may use."""

    username: str
    rules: tuple[Rule, ...]
    #: None: any client id (a login several connections share, like the service's).
    client_id: str | None = None
    #: A label for the broker's records (no secret).
    text: str = ""


def panel_username(site: str, panel: str) -> str:
    """The broker user name of a panel."""
    return f"{check_segment(site, 'site')}.{check_segment(panel, 'panel')}"


def panel_client_id(site: str, panel: str) -> str:
    """The one client id a panel's login may connect with."""
    return f"panel.{check_segment(site, 'site')}.{check_segment(panel, 'panel')}"


def panel_rules(site: str, panel: str) -> list[Rule]:
    """(access, topic filter) pairs that confine the panel to its own topics."""
    prefix = PanelTopics(site, panel).prefix
    return [("write", f"{prefix}/{leaf}") for leaf in PANEL_WRITES] + [
        ("read", f"{prefix}/{leaf}") for leaf in PANEL_READS
    ]


def service_rules() -> list[Rule]:
    """(access, topic filter) pairs of the service user."""
    return [("readwrite", "ac/v1/#"), ("read", SERVICE_REQUESTS)]


def broker_logins(
    panels: Iterable[tuple[str, str]], service_user: str = SERVICE_USER
) -> list[BrokerLogin]:
    """The service's login and one per ``(site, panel)``, each panel bound to its client id."""
    check_username(service_user)
    logins = [BrokerLogin(service_user, tuple(service_rules()), None, "accessd service")]
    logins += [
        BrokerLogin(
            panel_username(site, panel),
            tuple(panel_rules(site, panel)),
            panel_client_id(site, panel),
            f"panel {site}/{panel}",
        )
        for site, panel in sorted(set(panels))
    ]
    return logins


def hash_password(
    password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None
) -> PasswordHash:
    """A fresh salted hash of ``password``."""
    salt = os.urandom(SALT_LEN) if salt is None else salt
    if len(salt) != SALT_LEN:
        raise ValueError(f"Mosquitto salts are {SALT_LEN} bytes")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_LEN)
    return PasswordHash(salt, digest, iterations)


def parse_password_file(text: str) -> dict[str, PasswordHash]:
    """User name → hash of a ``mosquitto_passwd`` file; blank and ``#`` lines, and entries
    in other formats than ``$7$``, are skipped."""
    found: dict[str, PasswordHash] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        parsed = _parse_seven(hashed) if sep and user else None
        if parsed is not None:
            found[user] = parsed
    return found


def check_username(user: str) -> None:
    """ValueError for a user name no broker file can hold."""
    if not user or ":" in user or any(ord(c) < 32 or ord(c) == 127 for c in user):
        raise ValueError(f"broker user name {user!r} may not be empty or hold ':' or controls")


def _parse_seven(hashed: str) -> PasswordHash | None:
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != "7" or not parts[2].isdigit():
        return None
    try:
        salt = base64.b64decode(parts[3], validate=True)
        digest = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        return None
    return PasswordHash(salt, digest, int(parts[2])) if salt and digest else None
