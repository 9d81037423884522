"""What the benchmark prints: a line as each step ends, then the comparison with its
targets and, last, the JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gc_pauses import GcPauses
    from .runs import Runs


def say(text: str) -> None:
    print(text, flush=True)


def say_run(
    rnd: int,
    target: str,
    mode: str,
    flight: int,
    r: dict[str, Any],
    pauses: GcPauses,
    backlog: int,
) -> None:
    """One run of a round; ``backlog``, the decisions not yet stored, for the gateway's."""
    say(
        f"round {rnd + 1} {target:>10} {mode:>6} x{flight:<3}: "
        f"{r['per_s']:8,.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
        f"p99 {r['p99_ms']:.2f} ms  ({r['n']} replies, {r['errors']} errors)"
        f"  service GC: {pauses.summary()}"
        + (f"; {backlog:,} decisions not yet stored" if target == "gateway" else "")
    )


def say_replies(runs: Runs, echo_reply: bytes) -> None:
    """What the gateway answered, and the size of its replies against the echoes'."""
    reasons = runs.gateway_reasons()
    replies = sum(reasons.values())
    granted = reasons.get("granted", 0)
    say(
        f"gateway replies: {granted / max(replies, 1):.0%} granted; "
        f"reasons {dict(reasons.most_common(4))}; "
        f"reply sizes: gateway {runs.by[('gateway', 'flight')][0]['reply_bytes']:.0f} B, "
        f"echo {len(echo_reply)} B"
    )


def print_results(res: dict[str, Any], in_flight: int) -> None:
    """The figures against their targets, then two lines of JSON, the headline last."""
    ratio = res["decisions_per_s"] / res["echo_per_s"]
    say(
        f"decisions {res['decisions_per_s']:,.0f}/s vs echo {res['echo_per_s']:,.0f}/s at "
        f"{in_flight} in flight: {ratio:.2f}x (target >= 0.6); sequential p99 "
        f"{res['seq_p99_ms']:.2f} ms vs echo {res['echo_seq_p99_ms']:.2f} ms (target < 2); "
        f"revocation to {res['revocation_panels']} panels "
        f"{res['revocation_s'] if res['revocation_s'] is None else round(res['revocation_s'], 3)}"
        f" s (target < 1); every decision stored: {res['stored_ok']}"
    )
    print(
        json.dumps(
            {
                "baseline": "the faster of a bare paho echo and an MqttClient echo, figure by "
                "figure, same broker, same run",
                "baselines": res["baselines"],
                "gateway_start_s": round(res["gateway_start_s"], 2),
                "seq_p50_ms": round(res["seq_p50_ms"], 3),
                "echo_seq_p50_ms": round(res["echo_seq_p50_ms"], 3),
                "flight_p99_ms": round(res["flight_p99_ms"], 2),
                "echo_flight_p99_ms": round(res["echo_flight_p99_ms"], 2),
                "every_decision_stored": res["stored_ok"],
            }
        )
    )
    print(
        json.dumps(
            {
                "decisions_per_s": round(res["decisions_per_s"]),
                "echo_per_s": round(res["echo_per_s"]),
                "ratio": round(ratio, 3),
                "seq_p99_ms": round(res["seq_p99_ms"], 3),
                "echo_seq_p99_ms": round(res["echo_seq_p99_ms"], 3),
                "revocation_500_panels_s": (
                    None if res["revocation_s"] is None else round(res["revocation_s"], 3)
                ),
            }
        ),
        flush=True,
    )
