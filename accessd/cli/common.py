"""What every `accessd` command shares: its settings from the global options, and running
one coroutine to completion."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from accessd.config import Settings, load_settings

T = TypeVar("T")


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings file named by --config (or ACCESSD_CONFIG), with --database-url over it."""
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(args.config, **overrides)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Runs a command's coroutine on a new event loop and returns its result."""

    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())


def cli_user() -> str:
    """The audit trail's name for whoever runs a command at this terminal."""
    return f"cli:{getpass.getuser()}"
