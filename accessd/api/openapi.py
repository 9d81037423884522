"""The OpenAPI document, made to say what the API really answers.

FastAPI documents a route's success and its 422 (with a body shape the API never sends).
Every error leaves this API as RFC 9457 problem details (accessd/api/problems.py), and
which ones a route can give follows from what it is: it needs a token (401, 403), names a
record (404), writes (409), takes a body (400, 413), reaches the database (503
with Retry-After), or updates under If-Match (412 when stale; 428 when left out, where the
header is required). This adds those, once, when the document is first built, so a client
generator or a conformance checker (schemathesis) sees the truth.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from accessd.api.schemas.common import Problem

_PROBLEM = "application/problem+json"
_REF = {"$ref": "#/components/schemas/Problem"}
#: Updates that are refused without If-Match (services/records.check_version); a lifecycle
#: action (POST) takes it when given.
_IF_MATCH_REQUIRED = {"patch", "put", "delete"}
_WRITES = {"post", "put", "patch", "delete"}
_UNAUTHENTICATED_PATHS = {"/healthz", "/readyz"}

_DESCRIPTIONS = {
    "400": "The body is not the JSON this operation reads",
    "401": "No, unknown, revoked or expired bearer token (or a wrong password)",
    "403": "The operator's roles do not allow this (nor, for a door reader, its readers)",
    "404": "A record the request names (in its path, body or query) does not exist",
    "409": "A conflict: a name taken, a record in use, a lifecycle or separation-of-duties refusal",
    "412": "If-Match names a version that is no longer current",
    "413": "The request body is larger than the service reads",
    "422": "The request is invalid: which field and why",
    "428": "If-Match is required: send the ETag of the version you read",
    "429": "Too many failed logins from this account or address",
    "503": "The database (or a device) is unavailable: try again after Retry-After",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}


def _problem(code: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _DESCRIPTIONS[code],
        "content": {_PROBLEM: {"schema": _REF}},
    }
    if code in {"429", "503"}:
        response["headers"] = _RETRY_AFTER
    return response


def _operation(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    codes = {"422", "503"}
    if op.get("security"):
        # Any record named anywhere in the request may be missing: a path id, a person_id
        # in a body, a facility filter.
        codes |= {"401", "403", "404"}
    if "{" in path:
        codes.add("404")
    if method in _WRITES:
        codes.add("409")
    if "requestBody" in op:
        codes |= {"400", "413"}
    for param in op.get("parameters", []):
        if param.get("in") == "header" and param.get("name", "").lower() == "if-match":
            codes.add("412")
            if method in _IF_MATCH_REQUIRED:
                param["required"] = True
                codes.add("428")
    if "429" in responses:
        codes |= {"401", "429"}  # the login: a wrong username or password is a 401
    for code in sorted(codes):
        responses[code] = _problem(code)


def install(app: FastAPI) -> None:
    """Makes ``app.openapi()`` return the completed document (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for path, operations in schema.get("paths", {}).items():
            if path in _UNAUTHENTICATED_PATHS:
                # Their 503 is their own JSON (what is down), the shape of their 200.
                get = operations.get("get", {})
                if path != "/metrics" and "200" in get.get("responses", {}):
                    down = dict(get["responses"]["200"], description="Not (fully) up: see the body")
                    get["responses"]["503"] = down
                continue
            for method, op in operations.items():
                if isinstance(op, dict):
                    _operation(path, method, op)
        # Nothing refers to FastAPI's own 422 shape any more.
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
