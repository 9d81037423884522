"""The garbage collector's pauses on the service side, by run."""

from __future__ import annotations

import gc
import time


class GcPauses:
    """The garbage collector's pauses in this process (the service side), from gc.callbacks."""

    def __init__(self) -> None:
        self._start = 0.0
        self._gen = 0
        self.seen: list[tuple[int, float]] = []
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seen.append((info["generation"], (time.perf_counter() - self._start) * 1e3))

    def clear(self) -> None:
        self.seen.clear()

    def summary(self) -> str:
        if not self.seen:
            return "none"
        # On two shared cores a pass can also be a pass the OS preempted: the longest full
        # one apart from the longest of all tells which kind of pass stalls the loop.
        longest = max(ms for _, ms in self.seen)
        full = [ms for g, ms in self.seen if g == 2]
        longest_full = f", longest {max(full):.1f} ms" if full else ""
        return (
            f"{len(self.seen)} collections ({len(full)} full{longest_full}), "
            f"longest {longest:.1f} ms"
        )
