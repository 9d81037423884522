"""Fixtures: a fresh database per test on SQLite and on PostgreSQL, the app, operators.

Each backend gets a template database migrated once per run with the project's own
Alembic migrations; every test then gets a copy (CREATE DATABASE … TEMPLATE on PostgreSQL,
a file copy on SQLite) and drops it afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.api.app import create_app
from accessd.auth.passwords import hash_password
from accessd.auth.tokens import issue_token
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.events import DomainEvent, EventBus, session_info
from accessd.models import Operator

PG_ADMIN = os.environ.get("ACCESSD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "correct horse battery staple"
BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="database backends to run the database tests on",
    )


def _backends(config: pytest.Config) -> list[str]:
    choice = config.getoption("--db")
    return list(BACKENDS) if choice == "both" else [choice]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _backends(metafunc.config), scope="session")


# What in a test module shows it drives pcscd's virtual readers, whose two TCP ports and
# reader slots exist once on the machine: such tests must carry the vpcd marker.
#: Fails async tests that leave tasks running (tests/task_leaks.py).
pytest_plugins = ["tests.task_leaks"]

_VPCD_SIGNS = ("VirtualReaderSlot(", "35963", "35964")


# tryfirst: xdist reads the xdist_group marks in a hook of its own, which must see ours.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Puts every vpcd test in one xdist group (one worker runs them, in order), and refuses
    a run where a module uses the virtual readers without saying so."""
    grouping = config.pluginmanager.hasplugin("xdist")
    unmarked: set[str] = set()
    sources: dict[Path, str] = {}
    for item in items:
        if item.get_closest_marker("vpcd") is not None:
            if grouping:
                item.add_marker(pytest.mark.xdist_group("vpcd"))
            continue
        path = item.path
        if path not in sources:
            sources[path] = path.read_text() if path.suffix == ".py" else ""
        if isinstance(item, pytest.Function) and _uses_vpcd(item, sources[path]):
            unmarked.add(item.nodeid)
    if unmarked:
        raise pytest.UsageError(
            "these tests use vpcd's readers without @pytest.mark.vpcd, so parallel workers "
            "would share them: " + ", ".join(sorted(unmarked))
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker with --dist loadgroup, fails the run unless xdist really put the
    vpcd tests in their group: a pytest that xdist does not follow (9.2 keeps node ids
    where xdist 3.8 no longer writes) spreads them over workers without a word."""
    config = session.config
    if not getattr(config.option, "loadgroup", False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("vpcd") is not None and not item.nodeid.endswith("@vpcd")
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"xdist did not group {len(ungrouped)} vpcd tests (e.g. {ungrouped[0]}): "
            "this pytest and pytest-xdist do not work together; see pyproject.toml"
        )


def _uses_vpcd(item: pytest.Function, source: str) -> bool:
    if not any(sign in source for sign in _VPCD_SIGNS):
        return False
    try:
        body = inspect.getsource(item.function)
    except (OSError, TypeError):
        return True
    return any(sign in body for sign in _VPCD_SIGNS)


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{dbname}"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """backend -> template (PostgreSQL database name, or SQLite file path)."""
    made: dict[str, str] = {}
    run = uuid.uuid4().hex[:8]
    try:
        sqlite_file = tmp_path_factory.mktemp("tpl") / "template.db"
        asyncio.run(_migrate(f"sqlite+aiosqlite:///{sqlite_file}"))
        made["sqlite"] = str(sqlite_file)
        name = f"accessd_tpl_{run}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        made["postgresql"] = name
        asyncio.run(_migrate(_pg_url(name)))
        yield made
    finally:
        if "postgresql" in made:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{made["postgresql"]}" WITH (FORCE)'))


@pytest.fixture
async def db_url(backend: str, templates: dict[str, str], tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of the backend under test, dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path / "accessd.db"
        shutil.copyfile(templates["sqlite"], path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"accessd_t_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"')
    try:
        yield _pg_url(name)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@dataclass
class Recorder:
    """Subscribes to the event bus and keeps what it saw."""

    events: list[DomainEvent] = field(default_factory=list)

    def __call__(self, ev: DomainEvent) -> None:
        self.events.append(ev)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def events(bus: EventBus) -> Recorder:
    rec = Recorder()
    bus.subscribe(rec)
    return rec


@pytest.fixture
def sessions(engine: AsyncEngine, bus: EventBus) -> async_sessionmaker[AsyncSession]:
    maker = make_sessionmaker(engine)
    maker.configure(info=session_info(bus))
    return maker


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture
async def client(
    settings: Settings, engine: AsyncEngine, bus: EventBus
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine=engine, bus=bus)
    transport = httpx.ASGITransport(app=app)
    # httpx does not run the ASGI lifespan; the decision service starts and stops in it.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://accessd.test") as c,
    ):
        yield c


@pytest.fixture(scope="session")
def password_hash() -> str:
    # argon2id at full strength once per run; operators made by tests share it.
    return hash_password(PASSWORD)


@dataclass
class Operators:
    """Makes operators with roles and hands out Authorization headers for them."""

    sessions: async_sessionmaker[AsyncSession]
    password_hash: str
    made: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)

    async def make(
        self,
        *roles: str,
        name: str | None = None,
        person_id: int | None = None,
        readers: Sequence[int] = (),
    ) -> tuple[int, dict[str, str]]:
        """Creates an operator (a door_reader serving ``readers``); returns (id, headers)."""
        username = (
            name or f"{'-'.join(r.replace('_', '') for r in roles) or 'none'}-{len(self.made)}"
        )
        async with self.sessions() as s:
            op = Operator(
                username=username,
                password_hash=self.password_hash,
                roles=list(roles),
                person_id=person_id,
                readers=sorted(readers),
            )
            s.add(op)
            await s.flush()
            token, _ = await issue_token(s, op, 3600)
            await s.commit()
        result = (op.id, {"Authorization": f"Bearer {token}"})
        self.made[username] = result
        return result

    async def headers(self, *roles: str, readers: Sequence[int] = ()) -> dict[str, str]:
        return (await self.make(*roles, readers=readers))[1]


@pytest.fixture
def ops(sessions: async_sessionmaker[AsyncSession], password_hash: str) -> Operators:
    return Operators(sessions, password_hash)
