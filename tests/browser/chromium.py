"""Headless Chromium for the browser tests, held to this machine.

Debian's chromium (tests/services.sh installs it) is launched by path: Playwright's own
browser download comes from a CDN that CI cannot reach, and its Python wheel needs nothing
else (the node driver is inside it). A context made by `open_context` aborts every request
to anything but the loopback and records it, so a page that needs the internet fails its
test instead of passing wherever a CDN happens to be reachable; console errors and uncaught
page errors are recorded beside them.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Playwright,
    Route,
    WebError,
    WebSocketRoute,
)


def _find_chromium() -> str | None:
    # PATH first, for a machine that has it elsewhere; Debian's package puts its launcher
    # in /usr/bin, which a trimmed PATH may lack.
    found = shutil.which("chromium")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    return found


CHROMIUM = _find_chromium()
MISSING = (
    None
    if CHROMIUM is not None
    else "no chromium on PATH or in /usr/bin: `make services` installs Debian's (as root)"
)

#: Chromium resolves no host but the loopback: a request that got past the routes (one
#: Playwright cannot intercept) fails with ERR_NAME_NOT_RESOLVED, a console error the tests
#: see, instead of reaching out. The rules apply to IP literals too; loopback addresses
#: other than these two pass the routes (`is_local`) and then fail here, visibly.
_RESOLVER_RULES = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"
)

#: Every wait's bound (actions, navigations, expect()). Measured at a load average of 15-18
#: on the two cores: Swagger UI takes 6-10 s to list accessd's 105 operations and ReDoc
#: 4-9 s to render (1.7 and 1.3 s on an idle machine). A passing test waits only as long
#: as the page takes.
TIMEOUT_MS = 30_000


def is_local(url: str) -> bool:
    """Whether ``url`` stays on this machine: a loopback host, or no host at all (data:,
    blob: and about: URLs are the page's own)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = parts.hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Watch:
    """What the pages of one context did that a working offline page must not do."""

    #: Requests (and web sockets) to anything but this machine, aborted before they left.
    blocked: list[str] = field(default_factory=list)
    #: console.error() messages, with Chromium's own "Failed to load resource" among them.
    console_errors: list[str] = field(default_factory=list)
    #: Exceptions no script caught.
    page_errors: list[str] = field(default_factory=list)
    #: Set once a test has looked at the record (`assert_clean` or `seen`); the fixture
    #: fails a passing test whose record it never looked at and that is not clean.
    looked_at: bool = False

    def problems(self) -> list[str]:
        return (
            [f"blocked request to {url}" for url in self.blocked]
            + [f"console error: {text}" for text in self.console_errors]
            + [f"page error: {text}" for text in self.page_errors]
        )

    def assert_clean(self) -> None:
        """Fails unless nothing left the machine and no script logged or raised an error."""
        self.looked_at = True
        problems = self.problems()
        assert not problems, "\n".join(problems)

    def seen(self) -> Watch:
        """The record, marked as looked at by a test that expects problems in it."""
        self.looked_at = True
        return self


async def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, its resolver confined to localhost."""
    if CHROMIUM is None:
        raise RuntimeError(MISSING)
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=[_RESOLVER_RULES]
    )


async def open_context(browser: Browser) -> tuple[BrowserContext, Watch]:
    """A fresh context (no cookies, storage or cache from another test) that blocks and
    records what leaves the machine, and records console and page errors."""
    # Service workers fetch past the context's routes, so none may register.
    context = await browser.new_context(service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch()

    async def request(route: Route) -> None:
        url = route.request.url
        if is_local(url):
            await route.fallback()
        else:
            watch.blocked.append(url)
            await route.abort("blockedbyclient")

    async def socket(ws: WebSocketRoute) -> None:
        # Never connected to the server: the page sees the socket close.
        watch.blocked.append(ws.url)
        await ws.close(code=1008, reason="blocked by the test: not this machine")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url") or "?"
            watch.console_errors.append(f"{message.text} (at {where})")

    def page_error(error: WebError) -> None:
        watch.page_errors.append(str(error.error))

    await context.route("**/*", request)
    await context.route_web_socket(lambda url: not is_local(url), socket)
    context.on("console", console)
    context.on("weberror", page_error)
    return context, watch
