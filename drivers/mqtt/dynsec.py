"""The configuration file of Mosquitto's dynamic-security plugin, for the broker logins of
`drivers.mqtt.access`.

Why this plugin and not Mosquitto's password_file and acl_file (deploy/mosquitto/README.md
has the whole story): the acl_file is never asked about SUBSCRIBE, only about delivering,
so a panel could join the service's shared subscription and have its share of every
panel's requests dropped on delivery; and nothing there binds a client id to a login, so a
panel could connect with another's client id and take its session over. The plugin checks
subscriptions when they are made (``subscribeLiteral`` / ``subscribePattern``, matched
against the filter as sent, ``$share/<group>/`` included) and refuses a login whose client
id is not the one bound to it before the broker looks for a session to take over.

The format, as the plugin of Mosquitto 2.0 reads it: ``defaultACLAccess`` (what is allowed
when no rule matches), ``roles`` (each a name and its ``acls``: ``acltype``, ``topic``,
``allow``), ``clients`` (``username``, optional ``clientid``, ``password`` and ``salt`` in
base64 and ``iterations``, and the names of its roles) and ``groups``. The plugin reads the
file once, at the broker's start (a SIGHUP does not reload it), and skips silently a client
whose salt or hash has the wrong length, so `dynsec_config` refuses to write one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from drivers.mqtt.access import (
    HASH_LEN,
    SALT_LEN,
    BrokerLogin,
    PasswordHash,
    Rule,
    check_username,
)

#: Nothing that no rule grants: no publishing, no receiving, no subscribing. Unsubscribing
#: is harmless and a client may always take back what it asked for.
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
#: A shared subscription's filter. It is granted as the exact string the service sends
#: (``subscribeLiteral``): a ``+`` or ``#`` in a rule never has to stand for a group name.
SHARE_PREFIX = "$share/"


def acls_of(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """The plugin's ACL entries for acl_file-style (access, topic filter) rules: ``write``
    may publish, ``read`` may subscribe and be sent what matches; a ``$share/`` filter is a
    subscription only (what it delivers is checked against the topic's own rules)."""
    acls: list[dict[str, Any]] = []
    for access, topic in rules:
        if access not in ("read", "write", "readwrite"):
            raise ValueError(f"unknown access {access!r} for {topic!r}")
        if topic.startswith(SHARE_PREFIX):
            if access != "read":
                raise ValueError(f"a shared subscription is read only: {topic!r}")
            acls.append(_acl("subscribeLiteral", topic))
            continue
        if access in ("write", "readwrite"):
            acls.append(_acl("publishClientSend", topic))
        if access in ("read", "readwrite"):
            acls += [_acl("subscribePattern", topic), _acl("publishClientReceive", topic)]
    return acls


def dynsec_config(logins: Iterable[BrokerLogin], hashes: Mapping[str, PasswordHash]) -> str:
    """The plugin's JSON file: one role per login (named after it) holding its rules, and
    the login with its password hash and, when bound, its client id."""
    roles: list[dict[str, Any]] = []
    clients: list[dict[str, Any]] = []
    for login in sorted(logins, key=lambda item: item.username):
        check_username(login.username)
        pw = hashes[login.username]
        if len(pw.salt) != SALT_LEN or len(pw.digest) != HASH_LEN or pw.iterations < 1:
            raise ValueError(f"the password hash of {login.username!r} is not Mosquitto's")
        role = f"login:{login.username}"
        roles.append({"rolename": role, "acls": acls_of(login.rules)})
        client: dict[str, Any] = {"username": login.username}
        if login.client_id is not None:
            client["clientid"] = login.client_id
        if login.text:
            client["textname"] = login.text
        client |= {
            "password": _b64(pw.digest),
            "salt": _b64(pw.salt),
            "iterations": pw.iterations,
            "roles": [{"rolename": role}],
        }
        clients.append(client)
    doc = {
        "defaultACLAccess": DEFAULT_ACCESS,
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(doc, indent=2) + "\n"


def parse_dynsec_hashes(text: str) -> dict[str, PasswordHash]:
    """User name → password hash of a plugin file; ValueError if it is not one (clients
    without a usable hash are left out, as the plugin leaves them out)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("clients", []), list):
        raise ValueError("not a dynamic-security file")
    found: dict[str, PasswordHash] = {}
    for client in doc.get("clients", []):
        if not isinstance(client, dict):
            continue
        user, salt, digest = client.get("username"), client.get("salt"), client.get("password")
        iterations = client.get("iterations")
        if not all(isinstance(v, str) for v in (user, salt, digest)):
            continue
        if not isinstance(iterations, int) or iterations < 1:
            continue
        try:
            pw = PasswordHash(
                base64.b64decode(str(salt), validate=True),
                base64.b64decode(str(digest), validate=True),
                iterations,
            )
        except (ValueError, binascii.Error):
            continue
        if len(pw.salt) == SALT_LEN and len(pw.digest) == HASH_LEN:
            found[str(user)] = pw
    return found


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "allow": True}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
