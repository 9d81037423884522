"""accessd/db/outage.py: what counts as the database being away, and saying so once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import exc as sa_exc

from accessd.db.outage import DatabaseHealth, is_unavailable


class ConnectionDoesNotExistError(Exception):
    """Named as asyncpg names it; the adapter wraps it."""


def wrapped(driver_error: Exception) -> sa_exc.DBAPIError:
    adapter = Exception("Error")
    adapter.__cause__ = driver_error
    return sa_exc.DBAPIError("SELECT 1", {}, adapter)


def test_lost_refused_and_timed_out_connections_are_an_outage_and_bugs_are_not() -> None:
    assert is_unavailable(ConnectionRefusedError(111, "refused"))
    assert is_unavailable(TimeoutError())
    assert is_unavailable(sa_exc.TimeoutError("QueuePool limit reached"))
    assert is_unavailable(wrapped(ConnectionDoesNotExistError("closed mid-operation")))
    assert is_unavailable(sa_exc.OperationalError("SELECT 1", {}, Exception("gone")))
    assert not is_unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("unique")))
    assert not is_unavailable(wrapped(ValueError("a bug")))
    assert not is_unavailable(KeyError("a bug"))


def test_an_outage_is_said_once_reminded_each_minute_and_its_end_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    health = DatabaseHealth(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="accessd.db.outage"):
        for _ in range(50):
            health.failed("decision writer", ConnectionRefusedError(111, "refused"))
            now[0] += 1.0  # 50 failures over 50 s: no reminder yet
        assert [r.getMessage()[:20] for r in caplog.records] == ["database unavailable"]
        now[0] += 15.0
        health.failed("GET /v1/people", TimeoutError())
        assert "still unavailable after 65 s: 51 failures" in caplog.records[-1].getMessage()
        assert not health.available and health.outages == 1
        health.succeeded()
        health.succeeded()  # already up: nothing more said
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and said[-1].startswith("database back after 65.0 s; 51 operations")
    assert health.available and health.failures == 0 and health.total_failures == 51


def test_a_success_that_began_before_the_outage_does_not_end_it() -> None:
    now = [10.0]
    health = DatabaseHealth(clock=lambda: now[0])
    write_began = health.now()
    now[0] += 1.0
    health.failed("GET /v1/people", ConnectionRefusedError(111, "refused"))
    now[0] += 1.0
    health.succeeded(write_began)  # a write under way when the database went
    assert not health.available
    health.succeeded(health.now())
    assert health.available


def test_an_error_raised_while_cleaning_up_after_a_lost_connection_is_the_outage_too() -> None:
    """A rollback on a connection the outage closed fails with an error of its own, raised
    while the lost connection was being handled (its context, not its cause)."""
    try:
        try:
            raise ConnectionResetError(104, "reset by peer")
        except ConnectionResetError:
            raise sa_exc.InvalidRequestError("cannot roll back: the connection is closed")  # noqa: B904
    except sa_exc.InvalidRequestError as during_outage:
        assert is_unavailable(during_outage)
    try:
        try:
            raise KeyError("a bug")
        except KeyError:
            raise sa_exc.InvalidRequestError("a bug's cleanup")  # noqa: B904
    except sa_exc.InvalidRequestError as after_a_bug:
        assert not is_unavailable(after_a_bug)
