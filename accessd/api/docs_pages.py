"""/redoc served from the packaged ReDoc bundle with nothing fetched from outside.

fastapi-offline packages Swagger UI and ReDoc so that the API docs need no CDN, but ReDoc
2.x still loads one image from the internet: its sidebar's "API docs by Redocly" logo,
from https://cdn.redoc.ly/, with no option to turn it off (Redocly/redoc#2108). On an
isolated network the browser looks that name up and logs an error on every visit
(tests/browser/test_api_docs.py found it). The bundle is read from the installed package
once, that one address replaced by an inline empty image, and served from memory: no copy
of the bundle is kept in this repository, and a new fastapi-offline brings its new ReDoc.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from starlette.responses import HTMLResponse, Response

#: The one outside address in the packaged bundle, and what stands in for it.
_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
_NO_IMAGE = "data:image/svg+xml,%3Csvg%20xmlns='http://www.w3.org/2000/svg'/%3E"
_BUNDLE = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
#: Where the patched bundle is served (beside fastapi-offline's own static mount).
BUNDLE_URL = "/docs-assets/redoc.standalone.js"


@functools.cache
def redoc_bundle() -> tuple[bytes, str]:
    """The packaged ReDoc bundle without its outside address, and its ETag."""
    text = _BUNDLE.read_text(encoding="utf-8")
    # A ReDoc that no longer holds the address is served as it is.
    body = text.replace(_LOGO, _NO_IMAGE).encode("utf-8")
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def install_redoc(app: FastAPI, *, redoc_url: str = "/redoc") -> None:
    """Adds ``redoc_url`` and the patched bundle to ``app`` (made with redoc_url=None)."""
    assert app.openapi_url is not None

    @app.get(BUNDLE_URL, include_in_schema=False)
    async def redoc_js(request: Request) -> Response:
        body, etag = redoc_bundle()
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/javascript", headers=headers)

    @app.get(redoc_url, include_in_schema=False)
    async def redoc_html(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{BUNDLE_URL}",
            with_google_fonts=False,
            redoc_favicon_url=f"{root}/static-offline-docs/favicon.png",
        )
