"""Broker logins for the MQTT panels: a password each, the file of Mosquitto's
dynamic-security plugin (every login's password hash, the client id a panel is bound to,
the rules that confine it to its own topics), and the credentials to provision panels with.

`write_broker_files` is what `accessd mqtt acl` runs. The panels come from the database
(MQTT transport; topic site = facility code, panel = panel name); passwords that the
previous run's files already hold are kept unless ``rotate`` is set, so running it again
after adding a panel logs nobody else out. The previous hashes are read from the plugin's
file or, on the first run after the move to it, from the ``passwd`` file of the layout
before (password_file and acl_file, deploy/mosquitto/README.md), so no panel needs a new
password for the move. Every file is written to a temporary file in the same directory and
renamed over the old one, with its final mode from the start. Passwords never reach a log
line or the command's output.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.errors import AccessdError
from accessd.models import Facility, Panel
from accessd.models.enums import PanelTransport
from drivers.mqtt.access import (
    SERVICE_USER,
    PasswordHash,
    broker_logins,
    hash_password,
    panel_username,
    parse_password_file,
)
from drivers.mqtt.dynsec import dynsec_config, parse_dynsec_hashes
from drivers.mqtt.topics import TopicError, check_segment

#: The dynamic-security plugin's file (deploy/mosquitto/accessd.conf points at it).
SECURITY = "dynamic-security.json"
#: The password file of the layout before the plugin: read, never written, so the passwords
#: it holds carry over.
LEGACY_PASSWD = "passwd"
#: Plain passwords for provisioning the panels and the service: never readable by others.
CREDENTIALS = "credentials.json"


class AclError(AccessdError):
    """The broker files cannot be made (a panel or facility name that is not a topic
    segment, an unreadable previous file); nothing was written."""

    status = 422
    title = "MQTT broker files not written"
    code = "mqtt_acl"


@dataclass(frozen=True, slots=True)
class PanelLogin:
    site: str
    panel: str

    @property
    def username(self) -> str:
        return panel_username(self.site, self.panel)


@dataclass(frozen=True, slots=True)
class AclResult:
    """What a run did: counts only, never passwords."""

    panels: int
    kept: int
    new: int
    removed: int
    files: tuple[Path, ...]


async def mqtt_panels(session: AsyncSession) -> list[PanelLogin]:
    """The MQTT panels of every facility; AclError naming those that cannot be topics."""
    rows = await session.execute(
        select(Facility.code, Panel.name)
        .join(Facility, Facility.id == Panel.facility_id)
        .where(Panel.transport == PanelTransport.MQTT)
        .order_by(Facility.code, Panel.name)
    )
    logins: list[PanelLogin] = []
    bad: list[str] = []
    for code, name in rows:
        try:
            logins.append(PanelLogin(check_segment(code, "site"), check_segment(name, "panel")))
        except TopicError:
            bad.append(f"{code}/{name}")
    if bad:
        raise AclError(
            "facility codes and panel names must be 1-64 of A-Z a-z 0-9 _ - to be MQTT "
            f"topic segments: {', '.join(bad)}"
        )
    return logins


def new_password() -> str:
    """A 256-bit random password in URL-safe base64 (no ':' or spaces, for any config)."""
    return secrets.token_urlsafe(32)


def write_broker_files(
    out: Path,
    panels: Iterable[PanelLogin],
    *,
    service_user: str = SERVICE_USER,
    rotate: bool = False,
    group: int | None = None,
) -> AclResult:
    """Writes ``dynamic-security.json`` and ``credentials.json`` into ``out``.

    With ``group`` (a gid) the broker's file is 0640 and owned by that group, so a broker
    running as that group can read it; else 0600. The credentials are 0600."""
    logins = sorted(set(panels), key=lambda p: (p.site, p.panel))
    users = [service_user, *(p.username for p in logins)]
    if len(set(users)) != len(users):
        raise AclError(f"the service user {service_user!r} is also a panel's user name")
    out.mkdir(mode=0o750, parents=True, exist_ok=True)
    previous = _previous_passwords(out) if not rotate else {}
    passwords: dict[str, str] = {}
    kept = 0
    for user in users:
        if user in previous:
            passwords[user] = previous[user]
            kept += 1
        else:
            passwords[user] = new_password()
    removed = len(set(previous) - set(users))
    hashes = {user: hash_password(pw) for user, pw in passwords.items()}
    credentials = {
        "service": {"username": service_user, "password": passwords[service_user]},
        "panels": [
            {
                "site": p.site,
                "panel": p.panel,
                "username": p.username,
                "password": passwords[p.username],
            }
            for p in logins
        ],
    }
    broker_mode = 0o640 if group is not None else 0o600
    security = dynsec_config(
        broker_logins(((p.site, p.panel) for p in logins), service_user), hashes
    )
    files = (
        _write_atomic(out / SECURITY, security, broker_mode, group),
        _write_atomic(out / CREDENTIALS, json.dumps(credentials, indent=2) + "\n", 0o600, None),
    )
    return AclResult(len(logins), kept, len(users) - kept, removed, files)


def _previous_passwords(out: Path) -> dict[str, str]:
    """User → password from the previous run, for users whose hash in the broker's file
    still verifies against it (a hand-edited or rotated entry gets a new password)."""
    cred_path = out / CREDENTIALS
    if not cred_path.exists():
        return {}
    try:
        doc = json.loads(cred_path.read_text())
        entries = [doc["service"], *doc["panels"]]
        plain = {str(e["username"]): str(e["password"]) for e in entries}
        hashes = _previous_hashes(out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AclError(
            f"cannot read the previous files in {out} ({exc.__class__.__name__}); "
            "fix them or pass --rotate"
        ) from exc
    return {u: pw for u, pw in plain.items() if u in hashes and hashes[u].verify(pw)}


def _previous_hashes(out: Path) -> dict[str, PasswordHash]:
    if (out / SECURITY).exists():
        return parse_dynsec_hashes((out / SECURITY).read_text())
    if (out / LEGACY_PASSWD).exists():
        return parse_password_file((out / LEGACY_PASSWD).read_text())
    return {}


def _write_atomic(path: Path, text: str, mode: int, group: int | None) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            # mkstemp makes it 0600; the final mode and group are set before any byte is in.
            os.fchmod(stream.fileno(), mode)
            if group is not None:
                os.fchown(stream.fileno(), -1, group)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path
