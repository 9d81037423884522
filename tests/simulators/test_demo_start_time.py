"""How `accessd demo --at WHEN` reaches the simulated panels: the option's value, and the
simulator's go line, which sets how far from now its readers' time runs."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from accessd.cli.demo import add_demo_options, options_from
from simulators.panel.demo import parse_go


def test_a_plain_go_keeps_the_real_time() -> None:
    assert parse_go("go\n") == timedelta(0)


def test_go_with_a_time_runs_the_readers_that_far_from_now() -> None:
    when = datetime.now(UTC) + timedelta(days=2, hours=3)
    offset = parse_go(f"go {when.isoformat()}\n")
    assert abs(offset - timedelta(days=2, hours=3)) < timedelta(seconds=5)


@pytest.mark.parametrize("line", ["go 2026-12-07T10:00", "start", "go tomorrow"])
def test_a_go_line_without_an_offset_or_not_a_go_line_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_go(line)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_options(parser)
    return parser.parse_args(argv)


def test_at_takes_a_local_or_an_offset_date_time() -> None:
    assert options_from(parse("--at", "2026-12-07T10:00")).at == datetime(2026, 12, 7, 10, 0)
    offset = options_from(parse("--at", "2026-12-07T10:00-05:00")).at
    assert offset is not None and offset.utcoffset() == timedelta(hours=-5)
    assert options_from(parse()).at is None


def test_at_refuses_what_is_not_a_date_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--at", "monday morning")
    assert "not an ISO 8601 date-time" in capsys.readouterr().err
