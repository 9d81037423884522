"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd import __version__
from accessd.api import openapi as openapi_doc
from accessd.api import problems
from accessd.api.deps import no_nul_in_query
from accessd.api.docs_pages import install_redoc
from accessd.api.headers import SecurityHeaders
from accessd.api.limits import BodyLimit
from accessd.api.metrics import ApiMetrics, GatewayMetrics
from accessd.api.routes import (
    audit,
    auth,
    credentials,
    facilities,
    health,
    operators,
    people,
    policy_objects,
)
from accessd.api.routes import decisions as decisions_routes
from accessd.api.routes import enrollment as enrollment_routes
from accessd.api.routes import panels as panel_routes
from accessd.api.routes import policy as policy_routes
from accessd.api.routes import programs as program_routes
from accessd.api.state import AppState
from accessd.auth.token_cache import TokenCache
from accessd.authn.factory import build_card_authentication
from accessd.config import Settings
from accessd.db.engine import engine_from, make_sessionmaker
from accessd.db.outage import is_unavailable
from accessd.decisions.service import DecisionService
from accessd.events import EventBus, session_info
from accessd.gateway.links import broker_links
from accessd.gateway.service import gateway_from_settings
from accessd.heap import freeze_long_lived
from accessd.services import audit_checkpoints
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

DESCRIPTION = """\
Physical-access control and PIV credential management.

Authenticate with `POST /v1/auth/token` and send `Authorization: Bearer <token>`.
Updates need `If-Match` with the ETag you read, so a concurrent change is never lost.
Errors are RFC 9457 problem details (`application/problem+json`).
"""


async def _checkpoints(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], state: AppState
) -> None:
    """Signs the audit head to the checkpoint file every audit_checkpoint_seconds."""
    path, key = settings.audit_checkpoint_file, settings.checkpoint_key()
    assert path is not None and key is not None
    while True:
        try:
            async with sessions() as session:
                await audit_checkpoints.write(session, path, key)
        except (ConnectionError, TimeoutError) as exc:
            state.db_health.failed("audit checkpoint", exc)  # the database is away
        except OSError as exc:
            # The file's disk or share is away: said each time, an auditor relies on it.
            log.error("audit checkpoint to %s failed: %s", path, exc)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            state.db_health.failed("audit checkpoint", exc)
        await asyncio.sleep(settings.audit_checkpoint_seconds)


def create_app(
    settings: Settings, *, engine: AsyncEngine | None = None, bus: EventBus | None = None
) -> FastAPI:
    """Builds the app; the engine is made from settings unless one is handed in (tests)."""
    owns_engine = engine is None
    the_engine = engine if engine is not None else engine_from(settings)
    the_bus = bus or EventBus()
    sessions = make_sessionmaker(the_engine)
    sessions.configure(info=session_info(the_bus))
    decisions = DecisionService(sessions, the_bus)
    cards = build_card_authentication(settings, sessions)
    gateway = (
        gateway_from_settings(
            settings, sessions, decisions, cards.authenticator, the_bus, the_engine
        )
        if settings.mqtt_gateway
        else None
    )
    metrics = ApiMetrics()
    if gateway is not None:
        metrics.watch_mqtt(functools.partial(broker_links, gateway))
    state = AppState(
        settings,
        the_engine,
        sessions,
        the_bus,
        metrics,
        decisions,
        cards.authenticator,
        gateway,
        tokens=TokenCache(settings.reader_token_recheck_seconds),
    )
    # One view of the database for the whole process: the writers, the feed and the API.
    decisions.health = state.db_health
    state.metrics.registry.register(GatewayMetrics(lambda: state.gateway))
    if gateway is not None:
        gateway.events.health = state.db_health

    background = TaskSet("api background", logger=log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await decisions.start()
        await cards.start()
        if gateway is not None:
            await gateway.start()  # it freezes again after building caches it leads
        if settings.gc_freeze:
            freeze_long_lived("decision snapshot")
        if settings.audit_checkpoint_file is not None:
            background.spawn(_checkpoints(settings, sessions, state), name="audit-checkpoints")
        try:
            yield
        finally:
            await background.close()
            try:
                if gateway is not None:
                    await gateway.stop()
            finally:
                try:
                    await cards.stop()
                finally:
                    await decisions.stop()
            if owns_engine:
                await the_engine.dispose()

    # Swagger UI and ReDoc from the fastapi-offline package, not a CDN: an isolated site's
    # network reaches no CDN, and /docs was a white page there. ReDoc's page is ours
    # (accessd.api.docs_pages): its bundle still names one outside image.
    app = FastAPIOffline(
        title="accessd",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(no_nul_in_query)],
        redoc_url=None,
    )
    install_redoc(app)
    app.state.accessd = state
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(people.router)
    app.include_router(people.alerts_router)
    app.include_router(program_routes.router)
    app.include_router(credentials.router)
    for router in facilities.routers:
        app.include_router(router)
    app.include_router(operators.router)
    app.include_router(audit.router)
    app.include_router(decisions_routes.router)
    app.include_router(decisions_routes.challenges_router)
    app.include_router(enrollment_routes.router)
    app.include_router(panel_routes.router)
    app.include_router(policy_routes.router)
    app.include_router(policy_routes.threat_router)
    for router in policy_objects.routers:
        app.include_router(router)
    openapi_doc.install(app)
    return app
