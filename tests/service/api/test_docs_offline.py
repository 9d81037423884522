"""/docs and /redoc work on a network with no internet: every script, stylesheet and icon
they load is served by accessd itself (before, Swagger UI came from a CDN and an isolated
site saw a white page)."""

from __future__ import annotations

import re

import httpx
import pytest

#: What a page loads: src/href/spec-url attributes, and Swagger UI's `url: '…'` setting.
_ASSETS = re.compile(
    r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']"""
)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_docs_load_nothing_from_outside(client: httpx.AsyncClient, page: str) -> None:
    html = await client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    found = {a or b for a, b in _ASSETS.findall(html.text)}
    assert found, html.text
    outside = sorted(u for u in found if re.match(r"^(https?:)?//", u))
    assert outside == [], f"{page} loads from outside: {outside}"
    scripts = [u for u in found if u.endswith(".js")]
    assert scripts, found
    for url in found:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        if url.endswith(".js"):
            assert len(asset.content) > 100_000  # the bundle itself, not a stub
    assert "/openapi.json" in found
