"""Security headers on every response, and no caching of anything that carries a secret.

A pure ASGI middleware (no BaseHTTPMiddleware: that one buffers streamed bodies and costs
a task per request). The API answers JSON to programs: it is never framed, never sniffed
into another type, and sends no Referer on. Token answers and the operator's own details
are marked `Cache-Control: no-store`, so no proxy or browser cache keeps a bearer token.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
#: Paths whose answers hold secrets or a person's details.
_NO_STORE_PREFIXES = ("/v1/auth/",)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(_NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _ALWAYS if h[0] not in present]
                if no_store:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
