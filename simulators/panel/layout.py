"""A site's real panels, doors and readers for the simulator (``--layout FILE``).

JSON: ``{"v": 1, "panels": [{"name": "hq-panel-1", "doors": [{"door": 1, "readers": [1, 2],
"mode": "card_only"}, ...]}, ...]}`` with the ids accessd knows them by; ``mode`` (optional)
is the door's mode at start (``card_and_pin`` makes the reader ask for the PIN). Without a
layout a fleet numbers its panels, doors and readers itself (`simulators.panel.fleet`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from drivers.mqtt.topics import TopicError, check_segment
from drivers.panel.doors import MODES, DoorConfig, Mode


@dataclass(frozen=True, slots=True)
class PanelLayout:
    name: str
    doors: tuple[DoorConfig, ...]


def parse_layout(doc: Any) -> tuple[PanelLayout, ...]:
    """The panels of a layout document; ValueError saying what is wrong."""
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("panels"), list):
        raise ValueError('a layout is {"v": 1, "panels": [...]}')
    panels = []
    for p in doc["panels"]:
        try:
            name = check_segment(str(p["name"]), "panel")
            doors = tuple(_door(d) for d in p["doors"])
        except (KeyError, TypeError, TopicError) as exc:
            raise ValueError(f"panel {p!r:.60}: {exc}") from exc
        if not doors:
            raise ValueError(f"panel {name} has no doors")
        panels.append(PanelLayout(name, doors))
    if not panels:
        raise ValueError("the layout has no panels")
    return tuple(panels)


def _door(doc: dict[str, Any]) -> DoorConfig:
    mode = doc.get("mode", "card_only")
    if mode not in MODES:
        raise ValueError(f"door {doc.get('door')}: mode {mode!r} is not one of {sorted(MODES)}")
    readers = tuple(int(r) for r in doc["readers"])
    if int(doc["door"]) < 1 or any(r < 1 for r in readers):
        raise ValueError("door and reader ids are positive")
    return DoorConfig(door=int(doc["door"]), readers=readers, mode=cast(Mode, mode))


def read_layout(path: Path) -> tuple[PanelLayout, ...]:
    try:
        return parse_layout(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not JSON ({exc.msg})") from exc
