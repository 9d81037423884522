"""Counters of the API, exposed at /metrics in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from drivers.tasks import FAILURES


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
