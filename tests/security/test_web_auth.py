"""The HTTP side of auth: the middleware (tokens, sessions, scoping, 401/403 naming the action),
the login form with local users (argon2 hashes), and every route of the coordinator's HTTP app
having a rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from coordinator.api.gate import Gate
from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from coordinator.config.security import Auth
from coordinator.domain.auth import actions, visibility
from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups
from coordinator.domain.auth.tokens import Tokens
from coordinator.passwords import hash_password
from coordinator.storage.memory_auth import MemoryTokens
from coordinator.web.auth import API_ACTIONS, COOKIE, IDENTITY, ROUTES, Sessions, WebAuth, route_action

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str], WebAuth]]:
    tokens = Tokens(MemoryTokens())
    auth = Auth(users={"alice": {"password": hash_password(PASSWORD), "groups": ["dev"]},  # type: ignore[dict-item]
                       "bob": hash_password("bobs password")})
    authz = Authz(roles=[RolesFromGroups()], rules=[
        Allow(actions.READ, roles=["dev"], builders=["app"]), Allow(actions.ALL, roles=["admin"])])
    gate = Gate(auth, authz, tokens)
    admin, _ = await tokens.create("root", ["admin"])
    dev, _ = await tokens.create("dana", ["dev"])
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        # What the real pages do with a builder the reader may not see: answer as for a missing one.
        builder = request.match_info["builder"]
        if not visibility.sees(builder):
            return web.json_response({"error": f"no builder named {builder!r}"}, status=404)
        return web.json_response({"builder": builder, "user": request[IDENTITY].user})

    async def mutate(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/builders/{builder}", page)
    app.router.add_post("/unruled", mutate)
    auth_mw = WebAuth(gate, Sessions(tmp_path / "session.key"))
    auth_mw.install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", {"admin": admin, "dev": dev}, auth_mw
    finally:
        await runner.cleanup()


async def test_tokens_and_scopes_over_http(site: tuple[str, dict[str, str], WebAuth]) -> None:
    base, tokens, _ = site
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/builders/app") as r:
            assert r.status == 401 and "authentication required to read" in (await r.json())["error"]
        async with http.get(f"{base}/builders/app", headers={"Accept": "text/html"}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/auth/login?next=/builders/app"
        hdr = {"Authorization": f"Bearer {tokens['dev']}"}
        async with http.get(f"{base}/builders/app", headers=hdr) as r:
            assert r.status == 200 and (await r.json()) == {"builder": "app", "user": "dana"}
        # A builder outside a scoped reader's rules is hidden: the gate lets the read through with
        # the call's visibility, and the page answers as for a builder that does not exist.
        answers = []
        for hidden in ("secret-builder", "no-such-builder"):
            async with http.get(f"{base}/builders/{hidden}", headers=hdr) as r:
                answers.append((r.status, (await r.json())["error"].replace(hidden, "X")))
        assert answers[0] == answers[1] == (404, "no builder named 'X'")
        async with http.get(f"{base}/builders/app", headers={"Authorization": "Bearer gty_nope"}) as r:
            assert r.status == 401 and "not valid" in (await r.json())["error"]
        async with http.post(f"{base}/unruled", headers={"Authorization": f"Bearer {tokens['admin']}"}) as r:
            assert r.status == 403 and "has no authorization rule" in (await r.json())["error"]


async def test_login_sets_a_session_the_middleware_accepts(site: tuple[str, dict[str, str], WebAuth]) -> None:
    base, _, _ = site
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/auth/login?next=//evil.example/") as r:
            form = await r.text()
            assert r.status == 200 and 'name=password type=password' in form and "evil" not in form
        async with http.post(f"{base}/auth/login", json={"user": "alice", "password": "wrong"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "wrong user name or password"
        async with http.post(f"{base}/auth/login", json={"user": "mallory", "password": "x"}) as r:
            assert r.status == 401 and (await r.json())["error"] == "wrong user name or password"
        fields = {"user": "alice", "password": PASSWORD, "next": "/builders/app"}
        async with http.post(f"{base}/auth/login", data=fields, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/builders/app"
            set_cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        async with http.get(f"{base}/auth/whoami") as r:
            assert (await r.json()) == {"user": "alice", "groups": ["dev"], "via": "session", "auth": True}
        async with http.get(f"{base}/builders/app") as r:
            assert r.status == 200 and (await r.json())["user"] == "alice"
        async with http.get(f"{base}/builders/other") as r:
            assert r.status == 404  # hidden from alice: as if it did not exist
        async with http.post(f"{base}/auth/logout") as r:
            assert r.status == 200
        async with http.get(f"{base}/builders/app") as r:
            assert r.status == 401
    async with aiohttp.ClientSession(cookies={COOKIE: "forged.0000"}) as http:
        async with http.get(f"{base}/builders/app") as r:
            assert r.status == 401


async def test_sign_in_failures_are_limited(site: tuple[str, dict[str, str], WebAuth]) -> None:
    from coordinator.domain.auth.limits import FailureLimiter

    base, _, auth_mw = site
    auth_mw.failures = FailureLimiter(limit=3, window=60.0, now=lambda: 0.0)  # 10 in production
    async with aiohttp.ClientSession() as http:
        codes = []
        for _ in range(5):
            async with http.post(f"{base}/auth/login", json={"user": "bob", "password": "guess"}) as r:
                codes.append(r.status)
        assert codes == [401, 401, 401, 429, 429]
        async with http.post(f"{base}/auth/login", json={"user": "bob", "password": "bobs password"}) as r:
            assert r.status == 429  # even the right password waits out the window


async def test_every_route_of_the_coordinator_http_app_has_a_rule(tmp_path: Path) -> None:
    coord = Coordinator(MasterConfig(auth=Auth()), tmp_path / "d", "127.0.0.1:0", http="127.0.0.1:0")
    await coord.start()
    try:
        assert coord.web is not None and coord.web._runner is not None
        for route in coord.web._runner.app.router.routes():
            canonical = route.resource.canonical if route.resource is not None else ""
            method = route.method
            if method == "HEAD":
                continue
            assert route_action(method, canonical) is not None, f"{method} {canonical} has no rule in ROUTES"
            # A write has an explicit rule: its own, or its gRPC method's (the transcoded API).
            assert (method, canonical) in ROUTES or (method, canonical) in API_ACTIONS or method == "GET"
        # The HTTP API's force/stop take the rules of ForceBuild/StopBuild.
        assert route_action("POST", "/api/v1/builders/{builder}/force") == actions.FORCE
        assert route_action("POST", "/api/v1/builders/{builder}/builds/{number}/stop") == actions.STOP
    finally:
        await coord.aclose()


async def test_writes_are_rate_limited_per_client(tmp_path: Path) -> None:
    from coordinator.domain.auth.limits import RateLimiter

    auth = WebAuth(None, None)
    auth.writes = RateLimiter(rate=0.0, burst=3, now=lambda: 0.0)  # no refill: deterministic
    app = web.Application()

    async def hook(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_post("/change_hook/{dialect}", hook)
    app.router.add_get("/page", hook)
    auth.install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            codes = []
            for _ in range(5):
                async with http.post(f"{base}/change_hook/github", data=b"{}") as r:
                    codes.append(r.status)
            assert codes == [200, 200, 200, 429, 429]
            async with http.get(f"{base}/page") as r:
                assert r.status == 200  # reads are not limited
    finally:
        await runner.cleanup()
