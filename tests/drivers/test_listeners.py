"""drivers/listeners.py: one shape for callbacks; a failing one is logged and skipped."""

from __future__ import annotations

import logging

import pytest

from drivers.listeners import Listeners


def test_every_listener_is_called_in_order_even_after_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listeners: Listeners[[int, str]] = Listeners("status")
    calls: list[tuple[str, int, str]] = []

    def broken(address: int, state: str) -> None:
        raise ValueError("listener bug")

    listeners.add(lambda address, state: calls.append(("first", address, state)))
    listeners.add(broken)
    listeners.add(lambda address, state: calls.append(("third", address, state)))
    with caplog.at_level(logging.ERROR):
        listeners.emit(7, "online")
    assert calls == [("first", 7, "online"), ("third", 7, "online")]
    assert listeners.failed == 1
    record = next(r for r in caplog.records if "status listener" in r.getMessage())
    assert record.exc_info is not None and record.exc_info[0] is ValueError


def test_remove_is_idempotent_and_takes_effect_from_the_next_call() -> None:
    listeners: Listeners[[str]] = Listeners("messages")
    calls: list[str] = []
    removers: list[object] = []

    def once(value: str) -> None:
        calls.append("once:" + value)
        remove()

    def late(value: str) -> None:
        calls.append("late:" + value)

    def adds_another(value: str) -> None:
        removers.append(listeners.add(late))

    remove = listeners.add(once)
    listeners.add(adds_another)
    listeners.emit("a")
    assert calls == ["once:a"]  # `late` was added during the call: not called yet
    listeners.emit("b")
    assert calls == ["once:a", "late:b"]
    remove()  # a second time: no error
    # adds_another, and `late` twice (added during both calls)
    assert len(listeners) == 3
