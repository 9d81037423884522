"""Counters of the API, exposed at /metrics in Prometheus text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
