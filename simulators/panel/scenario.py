"""Scenarios from YAML: what people and the network do to a fleet, and what came of it.

A scenario is ``{name, seed?, settle?, steps: [...]}``; each step has ``at`` (seconds from
the start) and one action:

    rush:      {cards: N | all, over: seconds}      every card badges once at a random reader
    present:   {card: i, panel: p1, reader: r, times: n, every: s}
    force:     {panel: p1, door: d, seconds: s}     opened while locked (forced, maybe held)
    exit:      {panel: p1, door: d}                 REX and out
    partition: {panels: all | [p1, ...], seconds: s}
    hook:      name                                 runs the command given as --hook name=CMD
                                                    (broker restart, revoking a card, ...),
                                                    or awaits the hook when it is a callable
                                                    (a test driving the stack in-process)

The report counts presentations, grants, denials and offline decisions (per step too),
events recorded, uploaded (confirmed stored by accessd) and sent (publishes, resends
included), and what is still buffered.
"""

from __future__ import annotations

import asyncio
import random
import shlex
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from drivers.panel.session import AccessResult
from simulators.panel.fleet import SimulatedPanel
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial

ACTIONS = ("rush", "present", "force", "exit", "partition", "hook")

#: A hook is a shell command, or an in-process callable whose int result (if any) is the
#: step's exit code.
Hook = str | Callable[[], Awaitable[object]]


class ScenarioError(ValueError):
    """A scenario file that does not say what to do."""


def load_scenario(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path.name}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise ScenarioError(f"{path.name}: a scenario is a mapping with a list of steps")
    for n, step in enumerate(doc["steps"], 1):
        actions = [a for a in ACTIONS if isinstance(step, dict) and a in step]
        if len(actions) != 1 or not isinstance(step.get("at", 0), int | float):
            raise ScenarioError(f"{path.name}: step {n} needs 'at' and one of {ACTIONS}")
    return doc


class Runner:
    def __init__(
        self,
        panels: Sequence[SimulatedPanel],
        cards: Sequence[CardMaterial],
        hooks: Mapping[str, Hook] | None = None,
        seed: int = 1,
    ) -> None:
        self.panels = {p.name: p for p in panels}
        self.materials = list(cards)
        self.cards = [VirtualPivCard(m) for m in cards]
        self.hooks: Mapping[str, Hook] = hooks or {}
        self.random = random.Random(seed)  # noqa: S311 - who walks where, not a secret
        self.steps: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        # Buffers outlive a run (they are the panels' disks): count this run's events only.
        self._seq_before = {p.name: p.session.buffer.last_seq() for p in panels}

    async def run(self, scenario: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, step in enumerate(sorted(scenario["steps"], key=lambda s: s.get("at", 0))):
            delay = start + float(step.get("at", 0)) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._tasks.append(asyncio.create_task(self._step(n, step)))
        await asyncio.gather(*self._tasks)
        await self._settle(float(scenario.get("settle", 10)))
        return self.report(scenario.get("name", "scenario"), loop.time() - start)

    async def _step(self, n: int, step: dict[str, Any]) -> None:
        record: dict[str, Any] = {"step": n, "at": step.get("at", 0)}
        self.steps.append(record)
        action = next(a for a in ACTIONS if a in step)
        record["action"] = action
        args = step[action]
        if action == "rush":
            results = await self._rush(args)
        elif action == "present":
            results = await self._present(args)
        elif action == "force":
            await self._panel(args).force(int(args["door"]), float(args.get("seconds", 1)))
            results = []
        elif action == "exit":
            await self._panel(args).exit(int(args["door"]))
            results = []
        elif action == "partition":
            names = args.get("panels", "all")
            chosen = (
                list(self.panels.values()) if names == "all" else [self.panels[x] for x in names]
            )
            await asyncio.gather(*(p.partition(float(args["seconds"])) for p in chosen))
            results = []
        else:
            record["exit_code"] = await self._hook(str(args))
            results = []
        if results:
            record.update(self._tally(results))

    async def _rush(self, args: dict[str, Any]) -> list[AccessResult]:
        count = len(self.cards) if args.get("cards", "all") == "all" else int(args["cards"])
        over = float(args.get("over", 10))
        panels = list(self.panels.values())

        async def one(i: int) -> AccessResult:
            await asyncio.sleep(self.random.uniform(0, over))
            panel = self.random.choice(panels)
            reader = self.random.choice(panel.readers)
            card = i % len(self.cards)
            return await panel.badge(reader, self.cards[card], self.materials[card].pin)

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    async def _present(self, args: dict[str, Any]) -> list[AccessResult]:
        panel = self._panel(args)
        reader = int(args.get("reader", panel.readers[0]))
        card = int(args.get("card", 0))
        results = []
        for _ in range(int(args.get("times", 1))):
            results.append(await panel.badge(reader, self.cards[card], self.materials[card].pin))
            await asyncio.sleep(float(args.get("every", 1)))
        return results

    def _panel(self, args: dict[str, Any]) -> SimulatedPanel:
        name = args.get("panel")
        if name not in self.panels:
            raise ScenarioError(f"no panel {name!r} in this fleet")
        return self.panels[name]

    async def _hook(self, name: str) -> int:
        command = self.hooks.get(name)
        if command is None:
            raise ScenarioError(f"hook {name!r} has no command (--hook {name}=CMD)")
        if not isinstance(command, str):
            result = await command()
            return result if isinstance(result, int) else 0
        proc = await asyncio.create_subprocess_exec(*shlex.split(command))
        return await proc.wait()

    @staticmethod
    def _tally(results: list[AccessResult]) -> dict[str, Any]:
        return {
            "presented": len(results),
            "granted": sum(r.granted for r in results),
            "denied": sum(not r.granted for r in results),
            "offline": sum(r.offline for r in results),
            "last": results[-1].reason,
        }

    async def _settle(self, seconds: float) -> None:
        """Give the panels ``seconds`` to upload what they buffered."""
        for _ in range(int(seconds * 10)):
            if not any(p.session.buffer.pending_count() for p in self.panels.values()):
                return
            await asyncio.sleep(0.1)

    def report(self, name: str, elapsed: float) -> dict[str, Any]:
        stats = [p.session.stats for p in self.panels.values()]
        reasons: Counter[str] = Counter()
        for s in stats:
            reasons.update(s.reasons)
        return {
            "scenario": name,
            "panels": len(self.panels),
            "connected": sum(p.link.connected for p in self.panels.values()),
            "seconds": round(elapsed, 2),
            "presented": sum(s.granted + s.denied for s in stats),
            "granted": sum(s.granted for s in stats),
            "denied": sum(s.denied for s in stats),
            "offline": sum(s.offline for s in stats),
            "reasons": dict(reasons),
            "events_recorded": sum(
                p.session.buffer.last_seq() - self._seq_before[p.name] for p in self.panels.values()
            ),
            # Uploaded means stored: accessd confirmed it after its commit. Publishes the
            # broker took, resends included, are events_sent.
            "events_uploaded": sum(s.confirmed for s in stats),
            "events_sent": sum(s.uploaded for s in stats),
            "events_pending": sum(p.session.buffer.pending_count() for p in self.panels.values()),
            "commands": sum(s.commands for s in stats),
            "snapshots": sum(s.snapshots for s in stats),
            "deltas": sum(s.deltas for s in stats),
            "errors": sum(s.errors for s in stats),
            "steps": self.steps,
        }
