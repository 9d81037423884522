"""Liveness, readiness and metrics: no authentication, nothing secret.

Both checks answer within a second whatever the database does: a load balancer or an
orchestrator that waits on them must not hang with the service. /healthz says whether the
process is up and reaches its database; /readyz says, part by part, whether it can do its
work and, when not, what is down since when.

The MQTT broker being away makes the service degraded, not dead: the credential API keeps
serving and the gateway reconnects on its own, so /healthz still answers 200 (a liveness
probe that restarted the process would bring no broker back) but says "degraded", and
/readyz answers 503 with the broker's part saying since when and why.
"""

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from accessd import __version__
from accessd.api.deps import SessionDep, StateDep, bearer_scheme, current_actor
from accessd.api.state import AppState
from accessd.auth.permissions import Permission
from accessd.db.batches import BatchWriter
from accessd.db.outage import is_unavailable
from accessd.errors import PermissionDenied
from accessd.gateway.links import broker_links
from drivers.mqtt.health import LinkStatus

router = APIRouter(tags=["health"])

#: The longest a check waits for the database; the answer then says "unreachable".
CHECK_SECONDS = 0.8


async def _database(state: AppState) -> str:
    started = state.db_health.now()
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        state.db_health.failed("health check", exc)
        return "unreachable"
    state.db_health.succeeded(started)
    return "ok"


def _link(status: LinkStatus) -> dict[str, object]:
    part: dict[str, object] = {
        "state": "connected" if status.connected else "down",
        "broker": status.broker,
        "since": status.since.isoformat() if status.since else None,
        "seconds": status.seconds,
    }
    if not status.connected:
        part["attempts"] = status.attempts
        part["last_error"] = status.last_error
    return part


def _writer(writer: BatchWriter[Any], db: str) -> dict[str, object]:
    """A batch writer's part: "ok"; "holding" its queue while the database is away; or
    "failing": its last write was refused for another reason and is being retried."""
    if writer.failing:
        condition = "failing"
    elif db != "ok":
        condition = "holding"
    else:
        condition = "ok"
    return {"state": condition, "queued": writer.queued, "failures": writer.failures}


def _mqtt(state: AppState) -> str | None:
    """The gateway's broker: "connected" (every link up) or "down"; None without a gateway."""
    if state.gateway is None:
        return None
    up = all(s.connected for s in broker_links(state.gateway).values())
    return "connected" if up else "down"


@router.get("/healthz")
async def healthz(state: StateDep, response: Response) -> dict[str, str]:
    """Up and able to reach its database (503 when it cannot, within a second); "degraded"
    but 200 while the MQTT broker is away (see the module docstring)."""
    db = await _database(state)
    mqtt = _mqtt(state)
    if db != "ok":
        response.status_code = 503
    body = {"status": "ok" if db == "ok" and mqtt != "down" else "degraded", "database": db}
    if mqtt is not None:
        body["mqtt"] = mqtt
    body["version"] = __version__
    return body


@router.get("/readyz")
async def readyz(state: StateDep, response: Response) -> dict[str, object]:
    """Ready to decide and to record: each part's state, and for a database outage since
    when and how many operations it has failed (503 unless every part is ready)."""
    db = await _database(state)
    health = state.db_health
    database: dict[str, object] = {"state": db}
    if health.down_since is not None:
        database["down_seconds"] = round(time.monotonic() - health.down_since, 1)
        database["failures"] = health.failures
        database["last_error"] = health.last_error
    parts: dict[str, object] = {
        "database": database,
        # Doors are decided from the snapshot, database or not: what it holds, no verdict.
        "decisions": {
            "decided": state.decisions.decisions,
            "people": len(state.decisions.snapshot.people),
            "doors": len(state.decisions.snapshot.doors),
            # Contended presence decided in turns with the other instances, and decided
            # alone because a turn was not had in time (accessd.decisions.turns).
            "turns_taken": state.decisions.turns.taken,
            "turns_missed": state.decisions.turns.missed,
        },
        # Decisions made meanwhile wait in its queue until the database is back.
        "decision_writer": _writer(state.decisions.store, db),
    }
    if state.gateway is not None:
        # Panel events wait on their panels (unconfirmed) and in this queue.
        events = state.gateway.events
        parts["panel_events"] = _writer(events, db) | {
            "dead_lettered": events.dead_lettered,
            "lost": events.lost,
        }
    writers: list[BatchWriter[Any]] = [state.decisions.store]
    if state.gateway is not None:
        writers.append(state.gateway.events)
    writers_ok = not any(w.failing for w in writers)
    mqtt = _mqtt(state)
    if state.gateway is not None:
        # Panels decide offline from their caches meanwhile; requests wait for the broker.
        parts["mqtt"] = {"state": mqtt} | {
            role: _link(status) for role, status in broker_links(state.gateway).items()
        }
    ready = db == "ok" and mqtt != "down" and writers_ok
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not_ready", "parts": parts, "version": __version__}


@router.get("/metrics", response_class=Response)
async def metrics(
    state: StateDep,
    session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Response:
    """Prometheus counters. They tell an outsider what is refused and failing, so they need
    a token with audit:read (a scraper's operator) unless settings.metrics_public opens
    them, for a scraper on a network that only it reaches."""
    if not state.settings.metrics_public:
        actor = await current_actor(session, state, creds)
        if Permission.AUDIT_READ not in actor.permissions:
            raise PermissionDenied(
                "reading the metrics needs the audit:read permission",
                permission=Permission.AUDIT_READ.value,
            )
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
