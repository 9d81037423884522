"""The test PKI's repository on loopback: CRLs, CA certificates and an OCSP responder."""

from __future__ import annotations

import base64
import binascii
import socket
from collections import Counter
from types import TracebackType
from typing import Self

from aiohttp import web

from simulators.pki.authority import TestPki

CRL_TYPE = "application/pkix-crl"
CERT_TYPE = "application/pkix-cert"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
MAX_OCSP_REQUEST = 4096


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for the PKI's base URL before it starts)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RepositoryServer:
    """A CA repository on ``host:port``; ``online = False`` answers 503 to everything.

    ``requests`` counts hits by path, so tests can prove what a validator fetched.
    Subclasses add their routes in `_routes`.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.online = True
        self.requests: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_OCSP_REQUEST)
        self._routes(app)
        return app

    async def start(self) -> Self:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _count(self, request: web.Request) -> None:
        self.requests[request.path if request.method == "GET" else f"POST {request.path}"] += 1
        if not self.online:
            raise web.HTTPServiceUnavailable(text="repository offline")


class PkiServer(RepositoryServer):
    """Serves the test PKI ``pki``: its CRLs, CA certificates and OCSP responder."""

    def __init__(self, pki: TestPki, port: int, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.pki = pki

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/crl/{name}.crl", self._crl)
        app.router.add_get("/certs/{name}.crt", self._cert)
        app.router.add_post("/{prefix:(other-)?}ocsp", self._ocsp_post)
        app.router.add_get("/{prefix:(other-)?}ocsp/{request}", self._ocsp_get)

    async def _crl(self, request: web.Request) -> web.Response:
        self._count(request)
        try:
            body = self.pki.crl_der(request.match_info["name"])
        except ValueError as exc:
            raise web.HTTPNotFound(text=str(exc)) from exc
        return web.Response(body=body, content_type=CRL_TYPE)

    async def _cert(self, request: web.Request) -> web.Response:
        self._count(request)
        try:
            body = self.pki.certificate_der(request.match_info["name"])
        except ValueError as exc:
            raise web.HTTPNotFound(text=str(exc)) from exc
        return web.Response(body=body, content_type=CERT_TYPE)

    async def _ocsp_post(self, request: web.Request) -> web.Response:
        self._count(request)
        body = await request.read()
        return self._ocsp(body, request.match_info["prefix"])

    async def _ocsp_get(self, request: web.Request) -> web.Response:
        self._count(request)
        try:
            body = base64.b64decode(request.match_info["request"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise web.HTTPBadRequest(text="request is not base64") from exc
        return self._ocsp(body, request.match_info["prefix"])

    def _ocsp(self, body: bytes, prefix: str) -> web.Response:
        answer = self.pki.ocsp_response_der(body, prefix=prefix)
        return web.Response(body=answer, content_type=OCSP_RESPONSE_TYPE)
