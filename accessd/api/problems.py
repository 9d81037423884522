"""Every error leaves the API as RFC 9457 problem-details JSON; none as a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from accessd.errors import AccessdError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# A URN, not a URL: nothing is served there, and clients match on the code.
TYPE_BASE = "urn:accessd:problem:"


def problem(
    request: Request, status: int, title: str, detail: str, code: str, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _count(request: Request, reason: str) -> None:
    state = getattr(request.app.state, "accessd", None)
    if state is not None:
        state.metrics.rejected.labels(reason=reason).inc()


def install(app: FastAPI) -> None:
    @app.exception_handler(AccessdError)
    async def _domain(request: Request, exc: AccessdError) -> JSONResponse:
        _count(request, exc.code)
        return problem(request, exc.status, exc.title, exc.detail, exc.code, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        _count(request, "validation")
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem(
            request,
            422,
            "Invalid request",
            f"{where}: {first['msg']}",
            "validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        _count(request, f"http_{exc.status_code}")
        title = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}.get(
            exc.status_code, "HTTP error"
        )
        return problem(request, exc.status_code, title, str(exc.detail), f"http_{exc.status_code}")

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        _count(request, "stale_version")
        return problem(
            request,
            412,
            "Precondition failed",
            "the record changed while this update was applied; read it again",
            "stale_version",
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        _count(request, "integrity")
        log.info("integrity error on %s: %s", request.url.path, exc.orig)
        return problem(
            request,
            409,
            "Conflict",
            "the change conflicts with existing records (a unique value or a reference)",
            "conflict",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        state = getattr(request.app.state, "accessd", None)
        if state is not None:
            state.metrics.errors.inc()
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            request, 500, "Internal error", "the service failed; see its log", "internal"
        )
