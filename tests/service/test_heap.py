"""Freezing the long-lived heap: what is alive leaves the collector's passes, only in a
process that is accessd (`accessd serve`), never in an embedded app."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.api.app import create_app
from accessd.cli.serve import serving
from accessd.config import Settings
from accessd.events import EventBus
from accessd.heap import freeze_long_lived


@pytest.fixture
def thawed() -> Iterator[None]:
    """Gives the test process its collector back afterwards."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _seen_by_collector(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_what_is_alive_when_frozen_is_no_longer_walked(thawed: None) -> None:
    long_lived = [{"person": i} for i in range(100)]
    assert _seen_by_collector(long_lived)
    freeze_long_lived("test state")
    assert gc.get_freeze_count() > 0
    assert not _seen_by_collector(long_lived)
    made_later: list[int] = []
    assert _seen_by_collector(made_later)


def test_accessd_serve_freezes_unless_the_configuration_says_no(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().gc_freeze is False  # embedded: another program's process
    assert serving(Settings()).gc_freeze is True
    assert serving(Settings(gc_freeze=False)).gc_freeze is False
    monkeypatch.setenv("ACCESSD_GC_FREEZE", "false")
    assert serving(Settings()).gc_freeze is False


@pytest.mark.parametrize("freeze", [False, True])
async def test_the_service_freezes_after_start_only_when_set(
    freeze: bool, db_url: str, engine: AsyncEngine, bus: EventBus, thawed: None
) -> None:
    app = create_app(Settings(database_url=db_url, gc_freeze=freeze), engine=engine, bus=bus)
    async with app.router.lifespan_context(app):
        assert (gc.get_freeze_count() > 0) is freeze
