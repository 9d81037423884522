"""accessd.budget: each panel's malformed messages recorded up to a token bucket,
the rest counted, and said in the log once per panel per interval."""

from __future__ import annotations

import logging

import pytest

from accessd.budget import RecordBudget, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_gives_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, last=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)  # one token back after half a second
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped


def test_past_its_budget_a_panel_is_counted_and_logged_once_an_interval_others_unaffected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="accessd.budget")
    clock = Clock()
    budget = RecordBudget(rate=1.0, burst=5, report_every=60.0, clock=clock)
    allowed = [budget.allow(1, "hq/p1") for _ in range(1000)]
    assert sum(allowed) == 5 and budget.dropped == 995
    assert all(budget.allow(2, "hq/p2") for _ in range(5))  # its own bucket
    assert len(caplog.records) == 1 and "hq/p1" in caplog.records[0].getMessage()
    clock.now += 30  # 30 tokens back, no second line within the interval
    assert sum(budget.allow(1, "hq/p1") for _ in range(100)) == 5
    assert len(caplog.records) == 1
    clock.now += 31
    budget.allow(1, "hq/p1")
    assert [budget.allow(1, "hq/p1") for _ in range(10)].count(False) > 0
    assert len(caplog.records) == 2
    # The line says how many went since the last: the first was said at once, then
    # 994 + 95 within that interval, and this one.
    assert "1090 dropped" in caplog.records[1].getMessage()
