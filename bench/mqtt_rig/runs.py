"""The runs of the interleaved rounds, by target and mode, and the figures taken from them:
the median of the rounds, the baseline the faster echo."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .names import ECHOES


class Runs:
    """What the panel side reported for each run, under (target, mode)."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def add(self, target: str, mode: str, run: dict[str, Any]) -> None:
        self.by.setdefault((target, mode), []).append(run)

    def med(self, target: str, mode: str, key: str) -> float:
        value: float = statistics.median(r[key] for r in self.by[(target, mode)])
        return value

    # The baseline is the faster echo, each figure on its own: never the kinder one.
    def best(self, mode: str, key: str, pick: Callable[[Iterable[float]], float]) -> float:
        return float(pick(self.med(t, mode, key) for t in ECHOES))

    def gateway(self) -> list[dict[str, Any]]:
        return [r for (target, _), rs in self.by.items() if target == "gateway" for r in rs]

    def gateway_reasons(self) -> Counter[str]:
        reasons: Counter[str] = Counter()
        for r in self.gateway():
            reasons.update(r["reasons"])
        return reasons

    def gateway_sent(self) -> int:
        """Requests sent to the gateway, answered or not."""
        return sum(r["n"] + r["errors"] for r in self.gateway())

    def figures(self) -> dict[str, Any]:
        return {
            "decisions_per_s": self.med("gateway", "flight", "per_s"),
            "echo_per_s": self.best("flight", "per_s", max),
            "seq_p50_ms": self.med("gateway", "seq", "p50_ms"),
            "seq_p99_ms": self.med("gateway", "seq", "p99_ms"),
            "echo_seq_p50_ms": self.best("seq", "p50_ms", min),
            "echo_seq_p99_ms": self.best("seq", "p99_ms", min),
            "flight_p99_ms": self.med("gateway", "flight", "p99_ms"),
            "echo_flight_p99_ms": self.best("flight", "p99_ms", min),
            "baselines": {
                t: {
                    "per_s": round(self.med(t, "flight", "per_s")),
                    "flight_p99_ms": round(self.med(t, "flight", "p99_ms"), 2),
                    "seq_p50_ms": round(self.med(t, "seq", "p50_ms"), 3),
                    "seq_p99_ms": round(self.med(t, "seq", "p99_ms"), 3),
                }
                for t in ECHOES
            },
        }
