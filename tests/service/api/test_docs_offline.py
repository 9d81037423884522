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


async def test_the_redoc_bundle_names_no_image_from_outside(client: httpx.AsyncClient) -> None:
    """The packaged ReDoc still loads its sidebar logo from cdn.redoc.ly (the browser test
    tests/browser/test_api_docs.py saw the request): the bundle served has no such address,
    and a browser's second visit revalidates it instead of fetching it again."""
    from accessd.api.docs_pages import BUNDLE_URL

    bundle = await client.get(BUNDLE_URL)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert b"cdn.redoc.ly" not in bundle.content
    again = await client.get(BUNDLE_URL, headers={"If-None-Match": bundle.headers["etag"]})
    assert again.status_code == 304
