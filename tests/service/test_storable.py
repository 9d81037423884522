"""accessd.db.storable: what the databases would refuse, found before a row is queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from accessd.db.storable import (
    MAX_DEPTH,
    json_problem,
    moment_problem,
    printable,
    text_problem,
)


def test_non_finite_numbers_nul_and_lone_surrogates_are_named_where_they_are() -> None:
    assert json_problem({"a": 1, "b": [1.5, "x", None, True]}, "data") is None
    assert json_problem({"a": float("nan")}, "data") == "data.a: nan is not a finite number"
    assert "data[1]" in (json_problem([1, float("-inf")], "data") or "")
    assert "NUL" in (json_problem({"k\x00": 1}, "data") or "")
    assert "NUL" in (json_problem({"k": "v\x00"}, "data") or "")
    assert "surrogate" in (json_problem({"k": "\ud800"}, "data") or "")
    assert "not text" in (json_problem({1: 1}, "data") or "")
    assert "not JSON" in (json_problem({"k": object()}, "data") or "")
    assert text_problem("plain", "t") is None


def test_deep_nesting_and_large_documents_are_refused() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    assert "nested" in (json_problem(deep, "data") or "")
    assert "bytes of JSON" in (json_problem({"k": "x" * 70_000}, "data") or "")


def test_a_moment_that_cannot_be_taken_to_utc_is_refused() -> None:
    east = timezone(timedelta(hours=14))
    west = timezone(timedelta(hours=-5))
    assert moment_problem(datetime(2026, 1, 1, tzinfo=UTC), "at") is None
    assert moment_problem(datetime(1, 1, 1, tzinfo=UTC), "at") is None  # storable
    assert "years" in (moment_problem(datetime(1, 1, 1, tzinfo=east), "at") or "")
    assert "years" in (moment_problem(datetime(9999, 12, 31, 23, tzinfo=west), "at") or "")
    assert "offset" in (moment_problem(datetime(2026, 1, 1), "at") or "")


def test_printable_escapes_what_a_database_refuses_and_cuts() -> None:
    assert printable("a\x00b\ud800c") == "a\\x00b\\ud800c"
    assert printable("x" * 300, 10) == "x" * 10
