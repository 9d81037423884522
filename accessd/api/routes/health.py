"""Liveness, readiness and metrics: no authentication, nothing secret."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from accessd import __version__
from accessd.api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(state: StateDep, response: Response) -> dict[str, str]:
    """Up and able to reach its database."""
    try:
        async with state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        db = "ok"
    except (SQLAlchemyError, OSError):
        db = "unreachable"
        response.status_code = 503
    return {"status": "ok" if db == "ok" else "degraded", "database": db, "version": __version__}


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
