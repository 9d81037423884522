"""drivers.mqtt.health: a broker outage is said once, counted, reminded of once a minute,
and its end said with its length and count; the status dates the current state."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from drivers.errors import MqttConnectRefused, MqttUnreachable
from drivers.mqtt.health import LinkHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


WALL = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def health(clock: Clock) -> LinkHealth:
    return LinkHealth("accessd-a", "broker.example:1883", clock=clock, wall=lambda: WALL)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "drivers.mqtt.health"]


def test_an_outage_is_logged_once_then_counted_then_reminded_each_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    link = health(clock)
    link.begin()
    error = MqttUnreachable("cannot reach the broker at broker.example:1883: refused")
    with caplog.at_level(logging.WARNING, logger="drivers.mqtt.health"):
        for _ in range(20):  # twenty attempts in 59 s: one line
            link.failed(error)
            clock.now += 59 / 20
        assert len(warnings(caplog)) == 1
        first = warnings(caplog)[0]
        assert "accessd-a cannot connect to the MQTT broker broker.example:1883" in first
        assert "MqttUnreachable: cannot reach the broker" in warnings(caplog)[0]
        clock.now += 2
        link.failed(error)
        assert len(warnings(caplog)) == 2
        assert "21 attempts failed" in warnings(caplog)[1]
        assert not any(r.exc_info for r in caplog.records)
    status = link.status()
    assert (status.connected, status.attempts, status.failures) == (False, 21, 21)
    assert status.since == WALL and status.seconds == 61.0
    assert status.last_error == f"MqttUnreachable: {error}"


def test_the_recovery_is_logged_with_the_outage_and_the_count_starts_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    link = health(clock)
    link.begin()
    with caplog.at_level(logging.WARNING, logger="drivers.mqtt.health"):
        link.failed(MqttConnectRefused(5, "Not authorized"))
        clock.now += 7.5
        link.up()
    assert warnings(caplog)[-1] == (
        "accessd-a connected to the MQTT broker broker.example:1883"
        " after 7.5 s and 1 failed attempt"
    )
    status = link.status()
    assert (status.connected, status.attempts, status.last_error) == (True, 0, None)
    assert (status.connections, status.failures, status.seconds) == (1, 1, 0.0)


def test_a_lost_connection_is_dated_and_a_closed_one_is_not_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    link = health(clock)
    link.begin()
    link.up()
    clock.now += 30
    with caplog.at_level(logging.INFO, logger="drivers.mqtt.health"):
        link.down("keepalive timeout")
        assert warnings(caplog) == [
            "MQTT connection of accessd-a to broker.example:1883 lost: keepalive timeout"
        ]
        clock.now += 4
        assert link.status().seconds == 4.0
        assert link.status().last_error == "connection lost: keepalive timeout"
        link.up()
        link.close()
        link.down("closed")
    assert len(warnings(caplog)) == 1
    assert not link.status().connected


def test_a_link_that_never_began_has_no_date() -> None:
    status = health(Clock()).status()
    assert (status.connected, status.since, status.seconds) == (False, None, 0.0)
