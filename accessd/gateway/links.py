"""The gateway's broker connections by role, as the health checks and /metrics show them."""

from __future__ import annotations

from accessd.gateway.service import MqttGateway
from drivers.mqtt.health import LinkStatus


def broker_links(gateway: MqttGateway) -> dict[str, LinkStatus]:
    """Each link's status under its role: feeds (events, status, every publish) and, when
    the gateway has a session of its own for them, requests (the shared subscription)."""
    links = {"feeds": gateway.client.health.status()}
    if gateway.requests is not gateway.client:
        links["requests"] = gateway.requests.health.status()
    return links
