"""The browser tests' isolation holds: a page that needs the internet shows it, so a test
of an offline page can fail (tests/browser/chromium.py)."""

from __future__ import annotations

import pytest
from fastapi.openapi.docs import get_swagger_ui_html
from playwright.async_api import Route, expect

from tests.browser.chromium import is_local
from tests.browser.conftest import Tab
from tests.browser.served import Served

#: The browser tests here; the first test of the module needs no browser.
on_browser_loop = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8000/docs", True),
        ("http://127.0.0.2/", True),
        ("http://localhost:8000/", True),
        ("http://[::1]:8000/openapi.json", True),
        ("ws://127.0.0.1:8000/events", True),
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("blob:http://127.0.0.1:8000/0f6c3a", True),
        ("about:blank", True),
        ("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js", False),
        ("https://cdn.redoc.ly/redoc/logo-mini.svg", False),
        ("http://localhost.example.com/", False),
        ("http://127.0.0.1.nip.io/", False),
        ("http://10.0.0.5/crl/", False),
        ("wss://example.com/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_loopback_and_hostless_urls_are_local(url: str, local: bool) -> None:
    assert is_local(url) is local


@on_browser_loop
async def test_fastapis_stock_docs_page_shows_as_a_white_page_with_its_cdn_requests_blocked(
    tab: Tab, accessd: Served
) -> None:
    """What /docs was before issue 15's fix: FastAPI's own page, which loads Swagger UI from
    a CDN. Served here at a local address, it must come out as the isolated site saw it."""
    page = tab.page
    stock = bytes(
        get_swagger_ui_html(openapi_url=f"{accessd.url}/openapi.json", title="stock").body
    )
    cdn = sorted(
        url
        for url in stock.decode().split('"')
        if url.startswith("https://") and url.endswith((".js", ".css", ".png"))
    )
    assert cdn, "FastAPI's stock page names no CDN asset any more"

    async def stock_page(route: Route) -> None:
        await route.fulfill(body=stock, content_type="text/html")

    await page.route(f"{accessd.url}/stock-docs", stock_page)
    await page.goto(f"{accessd.url}/stock-docs")
    await expect(page.locator("#swagger-ui")).to_be_attached()
    await page.wait_for_load_state("networkidle")

    watch = tab.watch.seen()
    assert sorted(watch.blocked) == cdn
    assert any("SwaggerUIBundle is not defined" in e for e in watch.page_errors), watch.page_errors
    assert len(watch.console_errors) >= len(cdn), watch.console_errors
    await expect(page.locator(".opblock")).to_have_count(0)
    await expect(page.locator("#swagger-ui")).to_be_empty()


@on_browser_loop
async def test_requests_and_sockets_a_script_opens_to_the_outside_are_blocked(
    tab: Tab, accessd: Served
) -> None:
    page = tab.page
    await page.goto(f"{accessd.url}/healthz")
    outcome = await page.evaluate(
        """async () => {
            const fetched = await fetch("https://example.com/beacon").then(
                () => "answered", () => "refused");
            const socket = await new Promise(done => {
                const ws = new WebSocket("wss://example.com/live");
                ws.onopen = () => done("open");
                ws.onclose = e => done("closed " + e.code);
            });
            const local = (await fetch("/healthz")).status;
            return {fetched, socket, local};
        }"""
    )
    assert outcome == {"fetched": "refused", "socket": "closed 1008", "local": 200}
    assert tab.watch.seen().blocked == ["https://example.com/beacon", "wss://example.com/live"]
