"""The private Mosquitto of a run, from deploy/mosquitto/accessd.conf (a free port,
generated logins and ACL)."""

from __future__ import annotations

import secrets
from typing import Any

from drivers.mqtt.access import SERVICE_USER, BrokerLogin, panel_username

from .names import ECHO_ROOTS, ECHO_USER, SITE, cache_name, echo_subscription, requester_name


def logins(requesters: int, caches: int) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The panels (site, name) and a fresh password for every login: the service, the
    echoes, each requester panel and each cache panel."""
    panels = [(SITE, requester_name(i)) for i in range(requesters)] + [
        (SITE, cache_name(j)) for j in range(caches)
    ]
    passwords = {SERVICE_USER: secrets.token_urlsafe(32), ECHO_USER: secrets.token_urlsafe(32)}
    passwords |= {panel_username(s, p): secrets.token_urlsafe(32) for s, p in panels}
    return panels, passwords


def broker_for(passwords: dict[str, str], panels: list[tuple[str, str]]) -> Any:
    """Mosquitto from the project's config with the generated logins, plus the echoes' login
    confined to ``bench/echo/#`` and ``bench/paho/#``."""
    from tests.mqtt_broker import MosquittoBroker

    rules: list[tuple[str, str]] = []
    for echo, root in ECHO_ROOTS.items():
        rules += [("readwrite", f"{root}/#"), ("read", echo_subscription(echo))]
    echoes = BrokerLogin(ECHO_USER, tuple(rules), None, "bench echoes")
    return MosquittoBroker.with_users(passwords, panels, extra=[echoes])
