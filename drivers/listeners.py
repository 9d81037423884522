"""Callbacks registered with a component, called in turn; one failing does not stop the rest.

Every component that tells others about something (a message arrived, a PD went offline,
a snapshot changed, a CRL was accepted) holds a `Listeners` and offers its ``add``: one
shape everywhere, and an unsubscribe function back, which is safe to call twice.

A listener is synchronous and runs on the event loop thread; work that must wait belongs
in a task the listener starts. A listener that raises is logged with its traceback and
counted; the others still run, and the component carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")

log = logging.getLogger(__name__)


class Listeners(Generic[P]):
    """An ordered list of callbacks sharing one signature; ``what`` names them in logs."""

    def __init__(self, what: str, *, logger: logging.Logger | None = None) -> None:
        self.what = what
        self.failed = 0
        self._log = logger or log
        self._callbacks: list[Callable[P, object]] = []

    def __len__(self) -> int:
        return len(self._callbacks)

    def __bool__(self) -> bool:
        return bool(self._callbacks)

    def add(self, callback: Callable[P, object]) -> Callable[[], None]:
        """Registers ``callback`` (again, if it already is); returns its remover."""
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Calls every callback with these arguments, in the order they were added.

        The list is copied first: a callback may remove itself or add others, which take
        effect from the next call.
        """
        for callback in list(self._callbacks):
            try:
                callback(*args, **kwargs)
            except Exception:
                self.failed += 1
                self._log.exception("%s listener %r failed", self.what, callback)
