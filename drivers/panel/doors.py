"""One door's state machine: lock relay, door position sensor (DPS), request-to-exit (REX),
mode, and the forced-open and held-open alarms.

Inputs are calls (`grant`, `position`, `rex`, `set_mode`, `lockdown`, `unlock_for`);
timers run on the injected clock and are checked by `tick()`, which the panel calls a few
times a second and a test calls after `ManualClock.advance`. Outputs go to two callbacks:
`emit(type, data)` for events and `changed(door)` when lock, position or mode changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from drivers.mqtt.messages import DoorState, EventType, Scalar
from drivers.panel.clock import Clock

Mode = Literal["locked", "card_only", "card_and_pin", "unlocked", "lockdown"]
MODES: frozenset[str] = frozenset({"locked", "card_only", "card_and_pin", "unlocked", "lockdown"})
Position = Literal["closed", "open", "unknown"]

Emit = Callable[[EventType, dict[str, Scalar]], None]


@dataclass(frozen=True, slots=True)
class DoorConfig:
    door: int
    readers: tuple[int, ...]
    mode: Mode = "card_only"
    held_seconds: float = 30.0
    #: How long after a REX press the door may open without a forced alarm.
    rex_seconds: float = 5.0
    #: REX unlocks the relay (electric egress) as well as shunting the alarm.
    rex_unlocks: bool = True
    default_unlock_seconds: float = 5.0


class DoorController:
    """The door's logic; the hardware (or a simulator) drives it and follows `locked`."""

    def __init__(
        self,
        config: DoorConfig,
        clock: Clock,
        emit: Emit,
        changed: Callable[[DoorController], None] | None = None,
    ) -> None:
        self.config = config
        self.door = config.door
        self._clock = clock
        self._emit = emit
        self._changed = changed or (lambda _door: None)
        self.mode: Mode = config.mode
        self._mode_before_lockdown: Mode = config.mode
        self.position: Position = "unknown"
        self._unlock_until: float | None = None  # momentary unlock deadline
        self._access_open = False  # the current opening was authorised (grant, REX, unlock)
        self._rex_until = 0.0
        self._opened_at: float | None = None
        self.forced = False
        self.held = False

    # --- what the hardware reads --------------------------------------------------------

    @property
    def locked(self) -> bool:
        """Whether the relay holds the door locked now."""
        if self.mode == "lockdown":
            return True
        if self.mode == "unlocked":
            return False
        return self._unlock_until is None

    @property
    def accepts_cards(self) -> bool:
        return self.mode in ("card_only", "card_and_pin")

    @property
    def needs_pin(self) -> bool:
        return self.mode == "card_and_pin"

    def state(self) -> DoorState:
        return DoorState(
            lock="locked" if self.locked else "unlocked",
            position=self.position,
            mode=self.mode,
            at=self._clock.now(),
        )

    # --- inputs ---------------------------------------------------------------------------

    def grant(self, seconds: float | None = None) -> None:
        """A granted card: unlock for ``seconds`` (the door's default when 0 or None)."""
        self.unlock_for(seconds or self.config.default_unlock_seconds)

    def unlock_for(self, seconds: float) -> bool:
        """Momentary unlock (a grant or a command); refused (False) in lockdown."""
        if self.mode == "lockdown":
            return False
        was_locked = self.locked
        self._unlock_until = self._clock.monotonic() + seconds
        self._access_open = True
        if was_locked != self.locked:
            self._changed(self)
        return True

    def rex(self) -> None:
        """Request-to-exit pressed: egress is always allowed (life safety), lockdown too."""
        self._rex_until = self._clock.monotonic() + self.config.rex_seconds
        self._access_open = True
        self._emit("rex", {})
        if self.config.rex_unlocks and self.mode != "lockdown" and self.locked:
            self._unlock_until = self._clock.monotonic() + self.config.rex_seconds
            self._changed(self)

    def position_changed(self, is_open: bool) -> None:
        """The DPS reports the door open or closed."""
        now = self._clock.monotonic()
        new: Position = "open" if is_open else "closed"
        if new == self.position:
            return
        self.position = new
        if is_open:
            self._opened_at = now
            authorised = (
                self._access_open
                or not self.locked
                or now < self._rex_until
                or self.mode == "unlocked"
            )
            self._emit("door_pos", {"position": "open"})
            if not authorised:
                self.forced = True
                self._emit("forced", {"alarm": True})
        else:
            self._opened_at = None
            self._emit("door_pos", {"position": "closed"})
            if self.forced:
                self.forced = False
                self._emit("forced", {"alarm": False})
            if self.held:
                self.held = False
                self._emit("held", {"alarm": False})
            # Relock on close: a grant lets one person through, not everyone in its seconds.
            self._access_open = False
            if self._unlock_until is not None:
                self._unlock_until = None
                self._changed(self)
                return
        self._changed(self)

    def set_mode(self, mode: str) -> bool:
        """Change the mode; False for an unknown mode. Lockdown is left with `lockdown`."""
        if mode not in MODES:
            return False
        if mode == "lockdown":
            return self.lockdown(True)
        self.mode = mode  # type: ignore[assignment]  # checked against MODES above
        self._mode_before_lockdown = self.mode
        if mode in ("locked", "unlocked"):
            self._unlock_until = None
        self._changed(self)
        return True

    def lockdown(self, on: bool) -> bool:
        if on and self.mode != "lockdown":
            self._mode_before_lockdown = self.mode
            self.mode = "lockdown"
            self._unlock_until = None
            self._access_open = False
        elif not on and self.mode == "lockdown":
            self.mode = self._mode_before_lockdown
        else:
            return True
        self._changed(self)
        return True

    def tick(self) -> None:
        """Run the timers: relock when the unlock time is up, raise held-open."""
        now = self._clock.monotonic()
        if self._unlock_until is not None and now >= self._unlock_until:
            self._unlock_until = None
            if self.position != "open":
                self._access_open = False
            self._changed(self)
        if (
            self._opened_at is not None
            and not self.held
            and not self.forced
            and self.mode != "unlocked"
            and now - self._opened_at > self.config.held_seconds
        ):
            self.held = True
            self._emit("held", {"alarm": True, "seconds": round(now - self._opened_at, 1)})
