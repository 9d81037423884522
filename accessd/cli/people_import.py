"""`accessd import`: people and credentials from CSV, all or nothing, errors by line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from accessd.cli.common import cli_user, run, settings_from


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from accessd.db.engine import make_engine, make_sessionmaker
    from accessd.events import EventBus, session_info
    from accessd.services.actors import Actor
    from accessd.services.importer import ImportFailed, import_csv

    settings = settings_from(args)
    path: Path = args.file
    if not path.is_file():
        print(f"accessd: no such file: {path}", file=sys.stderr)
        return 2
    actor = Actor(None, cli_user(), frozenset())
    bars: dict[str, tqdm[Any]] = {}

    def progress(phase: str, done: int, total: int) -> None:
        bar = bars.get(phase)
        if bar is None:
            label = "checking rows" if phase == "check" else "writing"
            bar = bars[phase] = tqdm(
                total=total or None,
                desc=label,
                unit=" rows",
                file=sys.stderr,
                disable=args.quiet,
                leave=True,
            )
        bar.update(done - bar.n)

    async def go() -> int:
        engine = make_engine(settings.database_url)
        sessions = make_sessionmaker(engine)
        sessions.configure(info=session_info(EventBus()))
        try:
            with path.open(newline="", encoding="utf-8-sig") as stream:
                async with sessions() as session:
                    result = await import_csv(
                        session, actor, stream, source=path.name, progress=progress
                    )
                    await session.commit()
        except ImportFailed as exc:
            for bar in bars.values():
                bar.close()
            for err in exc.errors:
                print(f"{path}:{err.line}: {err.message}", file=sys.stderr)
            if exc.total > len(exc.errors):
                print(f"… and {exc.total - len(exc.errors)} more", file=sys.stderr)
            print(f"accessd: {exc.detail}", file=sys.stderr)
            return 1
        except UnicodeDecodeError as exc:
            print(f"accessd: {path} is not UTF-8 text ({exc.reason})", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        for bar in bars.values():
            bar.close()
        print(
            f"imported {result.people} people and {result.credentials} credentials "
            f"from {result.rows} rows"
        )
        return 0

    return run(go)


def add_import_command(sub: Any) -> None:
    """Adds `import` to the `accessd` parser."""
    p = sub.add_parser("import", help="bulk-import people and credentials from CSV")
    p.add_argument("file", type=Path)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_import)
