"""The door state machine: relay, DPS, REX, modes, forced-open and held-open, on a manual
clock (no sleeps)."""

from __future__ import annotations

import pytest

from drivers.mqtt.messages import EventType, Scalar
from drivers.panel.clock import ManualClock
from drivers.panel.doors import DoorConfig, DoorController


class Door:
    def __init__(self, **config: object) -> None:
        self.clock = ManualClock()
        self.events: list[tuple[EventType, dict[str, Scalar]]] = []
        self.changes = 0
        self.door = DoorController(
            DoorConfig(door=1, readers=(1,), held_seconds=30, **config),  # type: ignore[arg-type]
            self.clock,
            lambda kind, data: self.events.append((kind, data)),
            lambda _door: self._changed(),
        )

    def _changed(self) -> None:
        self.changes += 1

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.door.tick()


def test_a_grant_unlocks_for_its_seconds_then_relocks() -> None:
    d = Door()
    assert d.door.locked
    d.door.grant(5)
    assert not d.door.locked
    d.wait(4.9)
    assert not d.door.locked
    d.wait(0.2)
    assert d.door.locked
    assert d.changes == 2


def test_a_grant_of_zero_seconds_uses_the_door_default() -> None:
    d = Door(default_unlock_seconds=7)
    d.door.grant(0)
    d.wait(6.9)
    assert not d.door.locked
    d.wait(0.2)
    assert d.door.locked


def test_opening_a_locked_door_without_grant_or_rex_is_forced() -> None:
    d = Door()
    d.door.position_changed(True)
    assert d.kinds() == ["door_pos", "forced"]
    assert d.events[1][1] == {"alarm": True}
    d.door.position_changed(False)
    assert d.kinds()[-2:] == ["door_pos", "forced"]
    assert d.events[-1][1] == {"alarm": False}


def test_opening_after_a_grant_is_not_forced_and_closing_relocks() -> None:
    d = Door()
    d.door.grant(5)
    d.door.position_changed(True)
    d.door.position_changed(False)
    assert "forced" not in d.kinds()
    assert d.door.locked  # relock on close, before the five seconds are up


def test_opening_after_the_grant_expired_is_forced() -> None:
    d = Door()
    d.door.grant(5)
    d.wait(6)
    d.door.position_changed(True)
    assert "forced" in d.kinds()


def test_rex_lets_the_door_open_without_alarm() -> None:
    d = Door(rex_unlocks=False)
    d.door.rex()
    d.wait(2)
    d.door.position_changed(True)
    assert d.kinds() == ["rex", "door_pos"]
    assert d.door.locked  # no electric egress on this door: the handle opened it


def test_rex_works_in_lockdown_for_egress() -> None:
    d = Door()
    d.door.lockdown(True)
    d.door.rex()
    d.door.position_changed(True)
    assert "forced" not in d.kinds()
    assert d.door.locked


def test_a_door_held_open_past_its_time_raises_held_once_and_clears_on_close() -> None:
    d = Door()
    d.door.grant(5)
    d.door.position_changed(True)
    d.wait(29)
    assert "held" not in d.kinds()
    d.wait(2)
    d.wait(10)
    assert d.kinds().count("held") == 1
    d.door.position_changed(False)
    assert d.events[-1] == ("held", {"alarm": False})


def test_unlocked_mode_opens_freely_and_raises_no_alarm() -> None:
    d = Door()
    assert d.door.set_mode("unlocked")
    assert not d.door.locked
    d.door.position_changed(True)
    d.wait(120)
    assert d.kinds() == ["door_pos"]


def test_locked_mode_and_lockdown_accept_no_cards() -> None:
    d = Door()
    assert d.door.accepts_cards
    d.door.set_mode("locked")
    assert not d.door.accepts_cards
    d.door.set_mode("card_and_pin")
    assert d.door.accepts_cards and d.door.needs_pin
    d.door.lockdown(True)
    assert not d.door.accepts_cards and d.door.mode == "lockdown"


def test_lockdown_refuses_momentary_unlock_and_ends_in_the_mode_before() -> None:
    d = Door(mode="card_and_pin")
    d.door.grant(5)
    d.door.lockdown(True)
    assert d.door.locked
    assert not d.door.unlock_for(5)
    d.door.lockdown(False)
    assert d.door.mode == "card_and_pin" and d.door.locked


def test_an_unknown_mode_is_refused() -> None:
    d = Door()
    assert not d.door.set_mode("open_sesame")
    assert d.door.mode == "card_only"


@pytest.mark.parametrize("mode", ["locked", "card_only"])
def test_the_state_reports_lock_position_and_mode(mode: str) -> None:
    d = Door()
    d.door.set_mode(mode)
    d.door.position_changed(False)
    state = d.door.state()
    assert (state.lock, state.position, state.mode) == ("locked", "closed", mode)
