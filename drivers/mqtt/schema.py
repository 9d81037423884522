"""``python -m drivers.mqtt.schema``: the panel protocol's JSON Schema files.

    python -m drivers.mqtt.schema --write docs/schemas    # (re)write <name>.schema.json
    python -m drivers.mqtt.schema --check docs/schemas    # exit 1 when a file differs

One file per message kind of `drivers.mqtt.messages.SCHEMAS`, generated from the pydantic
models, so the published schema is what `decode` enforces.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drivers.mqtt.messages import SCHEMAS, json_schema

SUFFIX = ".schema.json"


def render(name: str) -> str:
    """The text of ``<name>.schema.json``: sorted keys, two-space indent, final newline."""
    return json.dumps(json_schema(SCHEMAS[name]), indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    """File name → text of every schema file."""
    return {f"{name}{SUFFIX}": render(name) for name in SCHEMAS}


def differences(directory: Path) -> list[str]:
    """What in ``directory`` is missing, out of date or left over (file names)."""
    want = expected_files()
    problems = []
    for name, text in want.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from the models")
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        if path.name not in want:
            problems.append(f"{path.name}: no such message")
    return problems


def write(directory: Path) -> list[Path]:
    """Writes every schema file into ``directory`` and removes ones for no message."""
    directory.mkdir(parents=True, exist_ok=True)
    want = expected_files()
    written = []
    for name, text in want.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    for path in directory.glob(f"*{SUFFIX}"):
        if path.name not in want:
            path.unlink()
    return written


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.mqtt.schema", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, metavar="DIR", help="write the schema files")
    mode.add_argument("--check", type=Path, metavar="DIR", help="exit 1 if they differ")
    args = parser.parse_args(argv)
    if args.write is not None:
        for path in write(args.write):
            print(f"wrote {path}")
        return 0
    problems = differences(args.check)
    for problem in problems:
        print(f"{args.check}/{problem}", file=sys.stderr)
    if problems:
        print("run: python -m drivers.mqtt.schema --write " + str(args.check), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
