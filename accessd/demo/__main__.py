"""``python -m accessd.demo``: the same as `accessd demo`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from accessd.cli.demo import add_demo_options, cmd_demo
from accessd.demo import run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m accessd.demo", description=run.__doc__)
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--database-url", help="overrides ACCESSD_DATABASE_URL")
    add_demo_options(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_demo(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
