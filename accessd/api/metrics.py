"""Counters of the API, exposed at /metrics in Prometheus text format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from drivers.mqtt.health import LinkStatus
from drivers.tasks import FAILURES

if TYPE_CHECKING:
    from accessd.gateway.service import MqttGateway


class ApiMetrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rejected = Counter(
            "accessd_rejected_requests",
            "Requests refused for bad input, authentication or permissions, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.errors = Counter(
            "accessd_internal_errors",
            "Requests that failed inside the service.",
            registry=self.registry,
        )
        self.registry.register(_TaskFailures())

    def watch_mqtt(self, links: Callable[[], dict[str, LinkStatus]]) -> None:
        """Exposes the gateway's broker connections (``links``: role → status)."""
        self.registry.register(_MqttLinks(links))


class _TaskFailures(Collector):
    """Background tasks that ended in an exception, by owner (drivers/tasks.py counts them
    for the whole process: the gateway, panels, OSDP buses, writers)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "accessd_background_task_failures",
            "Background tasks that failed with an exception, by the component that owned them.",
            labels=["owner"],
        )
        for owner, count in sorted(FAILURES.items()):
            family.add_metric([owner], count)
        yield family


class GatewayMetrics(Collector):
    """The MQTT gateway's counters (messages by kind: malformed ones by reason, those
    dropped past a panel's budget, spoofed, …) and what became of panel events, read when
    scraped from whichever gateway the app runs now (none: nothing)."""

    def __init__(self, gateway: Callable[[], MqttGateway | None]) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gateway = self._gateway()
        if gateway is None:
            return
        messages = CounterMetricFamily(
            "accessd_mqtt_gateway",
            "MQTT gateway occurrences by kind: messages received, malformed (by reason, and "
            "malformed_dropped past a panel's budget), spoofed, decisions, acks, ...",
            labels=["what"],
        )
        for what, count in sorted(gateway.counters.items()):
            messages.add_metric([what], count)
        yield messages
        store = gateway.events
        events = CounterMetricFamily(
            "accessd_panel_events",
            "Panel events by outcome: stored, duplicates (stored already), dead_lettered "
            "(stored as an error record instead: the database would refuse them), rejected "
            "(refused by the database alone, found by halving a batch), lost (not even a "
            "dead letter could be stored), dropped (the queue was full; the panel resends).",
            labels=["outcome"],
        )
        for outcome, count in (
            ("stored", store.stored),
            ("duplicates", store.duplicates),
            ("dead_lettered", store.dead_lettered),
            ("rejected", store.rejected),
            ("lost", store.lost),
            ("dropped", store.dropped),
        ):
            events.add_metric([outcome], count)
        yield events
        yield GaugeMetricFamily(
            "accessd_panel_events_queued", "Panel events waiting to be written.", store.queued
        )


class _MqttLinks(Collector):
    """The gateway's broker connections, by role: up or not, how many attempts to reach the
    broker failed (an outage is logged once; its attempts are counted here) and how many
    connections were made."""

    def __init__(self, links: Callable[[], dict[str, LinkStatus]]) -> None:
        self._links = links

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "accessd_mqtt_connected",
            "Whether the gateway's broker connection is up (1) or not (0), by role.",
            labels=["link"],
        )
        failures = CounterMetricFamily(
            "accessd_mqtt_connect_failures",
            "Attempts to reach the MQTT broker that failed, by role.",
            labels=["link"],
        )
        connections = CounterMetricFamily(
            "accessd_mqtt_connections",
            "Connections to the MQTT broker made (the first and every reconnection), by role.",
            labels=["link"],
        )
        for role, status in sorted(self._links().items()):
            connected.add_metric([role], 1.0 if status.connected else 0.0)
            failures.add_metric([role], status.failures)
            connections.add_metric([role], status.connections)
        yield connected
        yield failures
        yield connections
