"""One fleet in several simulator processes (``--processes P``), merged into one report.

A Python process runs its panels on one core; a large fleet (and its broker) wants all of
the machine's. So the parent runs P children of ``python -m simulators.panel`` with the
same arguments and a hidden ``--shard I/P``; shard I runs the panels of one index range of
the fleet, with the names, doors and readers the single-process run gives them
(`fleet_layout`, `shard_range`).

A shard runs the scenario's steps that concern its panels: ``present``, ``force`` and
``exit`` in the shard that holds the panel (a panel no shard holds goes to shard 0, which
refuses it as one process would); ``partition`` on the shard's share of the panels; ``rush``
with the shard's share of the cards (in proportion to its panels; the shard's card list is
rotated so that ``cards: all`` badges every card exactly once across the shards, as one
process does); ``hook`` and any other action in shard 0 only (a broker restart happens
once). Shard I draws its randomness from seed + I.

The merged report (`merge_reports`) sums every number (``seconds`` is the longest shard's),
merges the ``reasons`` counts, keeps the first shard's other values, and keeps every
shard's ``steps``, each with a ``shard`` field and its step number in the whole scenario,
ordered by step and shard; ``processes`` says how many shards ran and ``failed_shards``
(when present) which did not report. The parent forwards SIGINT, SIGTERM and SIGHUP to
the children (by pid) and exits with the first failing child's status (128 + the signal
that ended it), else 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drivers.panel.doors import DoorConfig
from simulators.panel.layout import PanelLayout
from simulators.pki import CardMaterial

#: The most panels one process runs by default (some 600 file descriptors of 1024).
PANELS_PER_PROCESS = 200
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Actions a shard runs only for the panel it holds.
_PANEL_ACTIONS = ("present", "force", "exit")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/P"`` with 0 <= I < P; ValueError otherwise."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not int(index) < int(count):
        raise ValueError(f"a shard is I/P with 0 <= I < P, not {text!r}")
    return Shard(int(index), int(count))


def default_processes(panels: int) -> int:
    """Enough processes that none runs more than PANELS_PER_PROCESS panels."""
    return max(1, -(-panels // PANELS_PER_PROCESS))


def fleet_layout(count: int, prefix: str, doors_per_panel: int) -> tuple[PanelLayout, ...]:
    """The numbered fleet of `simulators.panel.fleet` as a layout: panel ``<prefix><i>``
    with doors and readers ``(i-1)*doors_per_panel + 1 …``, one reader a door."""
    return tuple(
        PanelLayout(
            f"{prefix}{i}",
            tuple(
                DoorConfig(door=d, readers=(d,))
                for d in range((i - 1) * doors_per_panel + 1, i * doors_per_panel + 1)
            ),
        )
        for i in range(1, count + 1)
    )


def shard_range(total: int, shard: Shard) -> range:
    """The 0-based indices of the panels ``shard`` runs; the shards cover ``total`` once."""
    return range(total * shard.index // shard.count, total * (shard.index + 1) // shard.count)


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """What one shard runs: its panels, its card list and its part of the scenario."""

    layout: tuple[PanelLayout, ...]
    cards: list[CardMaterial]
    scenario: dict[str, Any] | None
    #: The step number in the whole scenario of each step the shard runs, in run order.
    steps: list[int]


def plan_shard(
    shard: Shard,
    layout: Sequence[PanelLayout],
    cards: Sequence[CardMaterial],
    scenario: Mapping[str, Any] | None,
) -> ShardPlan:
    """Shard ``shard`` of a fleet of ``layout`` running ``scenario`` with ``cards``."""
    share = shard_range(len(layout), shard)
    mine = tuple(layout[i] for i in share)
    offset = len(cards) * share.start // len(layout) if cards else 0
    rotated = list(cards[offset:]) + list(cards[:offset])
    if scenario is None:
        return ShardPlan(mine, rotated, None, [])
    names = {p.name for p in mine}
    everyone = {p.name for p in layout}
    kept: list[dict[str, Any]] = []
    numbers: list[int] = []
    # The Runner numbers steps in `at` order (a stable sort), and so do we.
    ordered = sorted(enumerate(scenario["steps"]), key=lambda s: s[1].get("at", 0))
    for number, step in ordered:
        own = _shard_step(step, shard, names, everyone, share, len(layout), len(cards), offset)
        if own is not None:
            kept.append(own)
            numbers.append(number)
    return ShardPlan(mine, rotated, {**scenario, "steps": kept}, numbers)


def _shard_step(
    step: dict[str, Any],
    shard: Shard,
    names: set[str],
    everyone: set[str],
    share: range,
    total: int,
    n_cards: int,
    offset: int,
) -> dict[str, Any] | None:
    """The shard's version of ``step``, or None when the step is another shard's."""
    if "rush" in step:
        args = step["rush"]
        count = n_cards if args.get("cards", "all") == "all" else int(args["cards"])
        part = count * share.stop // total - count * share.start // total
        return {**step, "rush": {**args, "cards": part}} if part else None
    if "partition" in step:
        args = step["partition"]
        chosen = args.get("panels", "all")
        if chosen == "all":
            return step
        ours = [n for n in chosen if n in names]
        return {**step, "partition": {**args, "panels": ours}} if ours else None
    action = next((a for a in _PANEL_ACTIONS if a in step), None)
    if action is not None:
        args = step[action]
        panel = args.get("panel")
        if panel in names or (shard.index == 0 and panel not in everyone):
            if action == "present" and n_cards:
                # Card i of the scenario is card i - offset of the rotated list.
                args = {**args, "card": (int(args.get("card", 0)) - offset) % n_cards}
            return {**step, action: args}
        return None
    return step if shard.index == 0 else None


def restore_steps(report: dict[str, Any], numbers: Sequence[int]) -> None:
    """Renumbers a shard report's steps as the whole scenario numbers them."""
    for record in report.get("steps", []):
        record["step"] = numbers[record["step"]]


def merge_reports(reports: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """One report from the shards' (shard index → report), as the module docstring says."""
    merged: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    for shard in sorted(reports):
        for key, value in reports[shard].items():
            if key == "steps":
                steps.extend({**record, "shard": shard} for record in value)
            elif key == "seconds":
                merged[key] = max(merged.get(key, value), value)
            elif isinstance(value, dict):
                counts: Counter[str] = Counter(merged.get(key, {}))
                counts.update(value)
                merged[key] = dict(counts)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                merged[key] = merged.get(key, 0) + value
            else:
                merged.setdefault(key, value)
    if steps or any("steps" in r for r in reports.values()):
        merged["steps"] = sorted(steps, key=lambda r: (r["step"], r["shard"]))
    return merged


async def run_shards(argv: Sequence[str], processes: int) -> tuple[dict[str, Any] | None, int]:
    """Runs ``processes`` shards of ``python -m simulators.panel argv…``; the merged report
    (None when no shard reported) and the exit status."""
    children = [
        # Our own program with the caller's own arguments: nothing goes through a shell.
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulators.panel",
            *argv,
            "--shard",
            str(Shard(i, processes)),
            stdout=asyncio.subprocess.PIPE,
            # Their own process group: a terminal's Ctrl-C reaches them once, through us.
            process_group=0,
        )
        for i in range(processes)
    ]
    loop = asyncio.get_running_loop()

    def forward(sig: signal.Signals) -> None:
        for child in children:
            if child.returncode is None:
                child.send_signal(sig)

    for sig in FORWARDED:
        loop.add_signal_handler(sig, forward, sig)
    try:
        outputs = await asyncio.gather(*(c.communicate() for c in children))
    finally:
        for sig in FORWARDED:
            loop.remove_signal_handler(sig)
        for child in children:
            if child.returncode is None:  # we are leaving on an exception: no orphans
                child.kill()
                await child.wait()
    reports: dict[int, dict[str, Any]] = {}
    status = 0
    for i, (child, (out, _)) in enumerate(zip(children, outputs, strict=True)):
        code = child.returncode if child.returncode is not None else 1
        code = 128 - code if code < 0 else code
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            report = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            report = None
        if isinstance(report, dict):
            reports[i] = report
        elif code == 0:
            code = 1  # it said it succeeded but reported nothing
        status = status or code
    if not reports:
        return None, status
    merged = merge_reports(reports)
    merged["processes"] = processes
    if len(reports) < processes:
        merged["failed_shards"] = [i for i in range(processes) if i not in reports]
    return merged, status
