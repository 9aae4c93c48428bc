"""The coordinator's HTTP server (aiohttp): ``POST /change_hook/DIALECT`` for webhooks, and what
the `mounts` add (the HTTP API under /api/v1/, the web UI).

A thin adapter: it reads the request and hands (dialect, headers, body) to the
WebhookReceiver, which does everything else; other methods on that path are 405.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence

from aiohttp import web

from coordinator.web.auth import QuietParseErrors, WebAuth
from coordinator.web.receiver import WebhookReceiver
from coordinator.web.settings import WebSettings

log = logging.getLogger(__name__)
MAX_BODY = 25 * 1024 * 1024  # GitHub caps a delivery at 25 MB
SHUTDOWN_TIMEOUT = 5.0


class HttpListenError(Exception):
    pass


class WebServer:
    def __init__(
        self,
        receiver: WebhookReceiver,
        settings: WebSettings,
        ssl_context: ssl.SSLContext | None = None,
        auth: WebAuth | None = None,
        mounts: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        self.receiver = receiver
        self.mounts = mounts  # each adds its routes (and middlewares): the API, the UI
        self.settings = settings
        self.ssl_context = ssl_context
        self.auth = auth
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/change_hook/{dialect}", self._change_hook)
        if self.auth is not None:
            self.auth.install(app)  # the authorization middleware and /auth/login
        for mount in self.mounts:
            mount(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
                               logger=QuietParseErrors(logging.getLogger("aiohttp.server")))
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port or 0, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise HttpListenError(
                f"cannot listen for HTTP on {self.settings.host}:{self.settings.port}: {exc.strerror}"
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def _change_hook(self, request: web.Request) -> web.Response:
        dialect = request.match_info["dialect"]
        body = await request.read()
        try:
            status, doc = await self.receiver.receive(dialect, request.headers, body)
        except Exception:  # an unexpected failure (storage down): say so, keep serving
            log.exception("%s webhook failed", dialect)
            return web.json_response({"error": "internal error; see the coordinator's log"}, status=500)
        return web.json_response(doc, status=status)

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await asyncio.wait_for(runner.cleanup(), SHUTDOWN_TIMEOUT + 5)
