"""Every error leaves the API as RFC 9457 problem-details JSON; none as a bare 500."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from accessd.db.outage import RETRY_AFTER_SECONDS, is_unavailable
from accessd.errors import AccessdError, TooManyAttempts

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# A URN, not a URL: nothing is served there, and clients match on the code.
TYPE_BASE = "urn:accessd:problem:"


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
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
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _allowed_methods(request: Request) -> str | None:
    """Every method served at the request's path, for a 405's Allow header (RFC 9110).

    Starlette names only the methods of the first route whose path matched, though
    `GET /v1/people` and `POST /v1/people` are two routes.
    """
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods.update(m.upper() for m in operations)
    return ", ".join(sorted(methods)) or None


def _count(request: Request, reason: str) -> None:
    state = getattr(request.app.state, "accessd", None)
    if state is not None:
        state.metrics.rejected.labels(reason=reason).inc()


def install(app: FastAPI) -> None:
    @app.exception_handler(AccessdError)
    async def _domain(request: Request, exc: AccessdError) -> JSONResponse:
        _count(request, exc.code)
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        )
        return problem(
            request, exc.status, exc.title, exc.detail, exc.code, headers=headers, **exc.extra
        )

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
        # A streamed body over the limit arrives here (limits.BodyTooLarge); one declaring
        # its length is refused by the middleware itself. Both carry the same code.
        code = "body_too_large" if exc.status_code == 413 else f"http_{exc.status_code}"
        _count(request, code)
        title = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}.get(
            exc.status_code, "HTTP error"
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem(request, exc.status_code, title, str(exc.detail), code, headers=headers)

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

    async def _failed(request: Request, exc: Exception) -> JSONResponse:
        state = getattr(request.app.state, "accessd", None)
        if is_unavailable(exc):
            # The database is away or did not answer in time: the client may retry, and
            # the outage is logged once (accessd/db/outage.py), not once per request.
            _count(request, "database_unavailable")
            if state is not None:
                state.db_health.failed(f"{request.method} {request.url.path}", exc)
            return problem(
                request,
                503,
                "Service unavailable",
                "the database is unavailable; try again shortly",
                "database_unavailable",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if state is not None:
            state.metrics.errors.inc()
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            request, 500, "Internal error", "the service failed; see its log", "internal"
        )

    # The database's failures are handled here, inside the app, and not by the catch-all
    # below: Starlette's outermost handler re-raises after answering, so the server would
    # log a traceback for every request of an outage.
    for kind in (OSError, TimeoutError, sa_exc.DBAPIError, sa_exc.TimeoutError):
        app.add_exception_handler(kind, _failed)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return await _failed(request, exc)
