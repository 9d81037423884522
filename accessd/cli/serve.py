"""`accessd serve`: the HTTP API (and, when configured, the MQTT gateway) in one process."""

from __future__ import annotations

import argparse
from typing import Any

from accessd.cli.common import run, settings_from
from accessd.config import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from accessd.api.app import create_app

    settings = serving(settings_from(args))
    host = args.host or settings.host
    port = args.port or settings.port
    _check_schema(settings)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level, access_log=False)
    return 0


def serving(settings: Settings) -> Settings:
    """The settings of a process that is accessd and nothing else: what only such a process
    may do (freezing the long-lived heap) is on unless the configuration says otherwise."""
    if "gc_freeze" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"gc_freeze": True})


def _check_schema(settings: Settings) -> None:
    from accessd.db.engine import make_engine
    from accessd.db.migrate import current_revision, head_revision

    async def check() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    current = run(check)
    if current != head_revision():
        raise SystemExit(
            f"accessd: the database is at revision {current or 'none'}, the code needs "
            f"{head_revision()}: run `accessd db upgrade` first"
        )


def add_serve_command(sub: Any) -> None:
    """Adds `serve` to the `accessd` parser."""
    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", help="bind address (default from settings: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from settings: 8000)")
    p.set_defaults(func=cmd_serve)
