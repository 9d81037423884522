"""Names both sides derive from the same numbers: the site, its panels, a person's card
identifiers, and the echoes' login and topics."""

from __future__ import annotations

import uuid

SITE = "hq"
ECHO_USER = "bench-echo"
#: The baselines, each on its own topics and shared subscription (its group is its name):
#: the MqttClient echo and the bare paho echo.
ECHO_ROOTS = {"mqttclient": "bench/echo", "paho": "bench/paho"}
ECHOES = tuple(ECHO_ROOTS)
#: The person whose card the revocation suspends (credential and person share the id).
REVOKED = 1


def requester_name(i: int) -> str:
    return f"r{i:03d}"


def cache_name(j: int) -> str:
    return f"c{j:03d}"


def card_uuid(person: int) -> str:
    return str(uuid.UUID(int=person))


def fasc_n(person: int) -> str:
    return f"{person:050x}"


def echo_subscription(echo: str) -> str:
    return f"$share/{echo}/{ECHO_ROOTS[echo]}/+/req"
