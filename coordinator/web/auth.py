"""The one authorization check of the HTTP server (an aiohttp middleware) and the login form.

For the web UI: link to ``/auth/login?next=/PAGE`` (GET shows a minimal form; POST with form or
JSON fields ``user``, ``password``, ``next`` sets an HttpOnly, SameSite=Lax session cookie),
``POST /auth/logout`` ends it, ``GET /auth/whoami`` says who the browser is ({"user": "",
"groups": [], "via": ""} when anonymous). Handlers may read ``request[IDENTITY]``.

Every route maps to an action: the HTTP API's transcoded routes (coordinator/web/api/routes.py)
take the rule of the gRPC method they call (coordinator/api/interceptors/methods.py), so both
transports answer alike; the others are in ROUTES. A route in neither is READ for GET/HEAD and
refused for other methods until it is given a rule (tests/security/test_web_auth.py lists the
app's routes). The builder a route is about comes from its ``{builder}`` path part, if any.
Control actions are recorded in the audit log, as the gRPC interceptor records them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from coordinator.api.auth import change_token_refusal
from coordinator.api.gate import Credentials, Gate, bearer_of, current_identity
from coordinator.api.interceptors.auth import too_large
from coordinator.api.interceptors.methods import METHODS
from coordinator.domain.auth import actions
from coordinator.domain.auth.audit import AUDITED, AuditEntry, AuditStore
from coordinator.domain.auth.identity import ANONYMOUS, Identity
from coordinator.domain.auth.limits import FailureLimiter, RateLimiter
from coordinator.domain.errors import PermissionDenied, Unauthenticated
from coordinator.logsafe import clip
from coordinator.passwords import verify_password

log = logging.getLogger(__name__)
COOKIE = "gantry_session"
SESSION_SECONDS = 7 * 86400
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDENTITY = web.RequestKey("identity", Identity)  # who the request is from: request[IDENTITY]

# (method, canonical route) -> action. Webhooks prove themselves with their dialect's secret.
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/change_hook/{dialect}"): actions.PUBLIC,
    ("GET", "/auth/login"): actions.PUBLIC,
    ("POST", "/auth/login"): actions.PUBLIC,
    ("POST", "/auth/logout"): actions.PUBLIC,
    ("GET", "/auth/whoami"): actions.PUBLIC,
}


def _api_actions() -> dict[tuple[str, str], str]:
    from coordinator.web.api import routes  # the transcoding table (imports this module: late)

    found = {}
    for route in [*routes.ROUTES, *routes.OTHER]:
        rule = METHODS.get(route.grpc_name)
        if rule is not None:
            found[(route.method, route.path)] = rule.action
    return found


def route_action(method: str, canonical: str) -> str | None:
    action = ROUTES.get((method, canonical)) or API_ACTIONS.get((method, canonical))
    if action is None and method in ("GET", "HEAD"):
        action = ROUTES.get(("GET", canonical), actions.READ)
    return action


API_ACTIONS = _api_actions()


class Sessions:
    """Signed session cookies: user, groups and expiry, HMAC-SHA256 with a key kept in the data
    directory (so sessions survive a restart; delete the file to end them all)."""

    def __init__(self, key_file: Path, now: Callable[[], float] = time.time) -> None:
        self.now = now
        try:
            self._key = key_file.read_bytes()
        except FileNotFoundError:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            self._key = secrets.token_bytes(32)
            key_file.write_bytes(self._key)
            key_file.chmod(0o600)

    def issue(self, who: Identity) -> str:
        body = json.dumps({"u": who.user, "g": sorted(who.groups), "e": self.now() + SESSION_SECONDS})
        payload = base64.urlsafe_b64encode(body.encode()).decode()
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def identity(self, cookie: str | None) -> Identity | None:
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        payload, _, sig = cookie.rpartition(".")
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(payload))
        except ValueError:
            return None
        if doc.get("e", 0) < self.now():
            return None
        return Identity(str(doc["u"]), frozenset(doc.get("g", ())), "session")


class WebAuth:
    """The middleware and the /auth routes. `gate` None: no auth configured (loopback only),
    everyone may do everything and the login form says so."""

    def __init__(
        self, gate: Gate | None, sessions: Sessions | None, *, secure_cookie: bool = False,
        audit: AuditStore | None = None, now: Callable[[], float] = time.time, change_token: str = "",
    ) -> None:
        self.gate = gate
        # Without `auth`, as over gRPC: submitting changes alone needs the change token, if set.
        self.change_token = f"Bearer {change_token}".encode() if change_token else b""
        self.sessions = sessions
        self.secure_cookie = secure_cookie
        self.audit = audit
        self.now = now
        self.failures = FailureLimiter(limit=10, window=60.0, now=time.monotonic)
        # Webhooks and other writes, per client address (reads are not limited).
        self.writes = RateLimiter(rate=10.0, burst=50.0, now=time.monotonic)

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.router.add_get("/auth/login", self._login_form)
        app.router.add_post("/auth/login", self._login)
        app.router.add_post("/auth/logout", self._logout)
        app.router.add_get("/auth/whoami", self._whoami)

    # -- the check -----------------------------------------------------------------------------

    async def _identify(self, request: web.Request) -> Identity:
        assert self.gate is not None
        auth = self.gate.auth
        cert = request.transport.get_extra_info("peercert") if request.transport is not None else None
        cert_user, cert_groups = None, []
        if cert:  # only present when the client CA verified it
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cert_user = value
                    elif key == "organizationalUnitName":
                        cert_groups.append(value)
        creds = Credentials(
            peer_ip=request.remote or "",
            bearer=bearer_of(request.headers.get("Authorization")),
            cert_user=cert_user,
            cert_groups=tuple(cert_groups),
            proxy_user=request.headers.get(auth.proxy_header) if auth.proxy_header else None,
            proxy_groups=tuple(g.strip() for g in request.headers.get(auth.proxy_groups_header or "", "").split(",")
                               if g.strip()) if auth.proxy_groups_header else (),
        )
        who = await self.gate.identify(creds)
        if who is ANONYMOUS and self.sessions is not None:
            who = self.sessions.identity(request.cookies.get(COOKIE)) or ANONYMOUS
        return who

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not self.writes.allow(request.remote or ""):
            return web.json_response(
                {"error": f"too many requests from {request.remote}: slow down", "code": "RESOURCE_EXHAUSTED"},
                status=429, headers={"Retry-After": "1"})
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        action = route_action(request.method, canonical)
        if action is None or action not in AUDITED or request.method in ("GET", "HEAD"):
            return await self._checked(request, handler, action, canonical)
        status, detail = 500, ""
        try:
            response = await self._checked(request, handler, action, canonical)
            status = response.status
            return response
        except web.HTTPException as exc:
            status, detail = exc.status, exc.text or ""
            raise
        finally:
            await self._record(request, action, status, detail)

    async def _checked(
        self, request: web.Request, handler: Handler, action: str | None, canonical: str
    ) -> web.StreamResponse:
        if self.gate is None:
            if self.change_token and action == actions.SUBMIT:
                refusal = change_token_refusal(request.headers.get("Authorization"), self.change_token, "the header")
                if refusal is not None:
                    return web.json_response({"error": refusal, "code": "UNAUTHENTICATED"}, status=401,
                                             headers={"WWW-Authenticate": "Bearer"})
            return await handler(request)
        if action == actions.PUBLIC:
            return await handler(request)
        if action is None:
            return web.json_response(
                {"error": f"{request.method} {canonical} has no authorization rule", "code": "PERMISSION_DENIED"},
                status=403)
        try:
            who = await self._identify(request)
            builder = request.match_info.get("builder")
            self.gate.authorize(who, action, [builder] if builder else [])
        except Unauthenticated as exc:
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                raise web.HTTPSeeOther(f"/auth/login?next={request.path}") from None
            return web.json_response({"error": str(exc), "code": "UNAUTHENTICATED"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        except PermissionDenied as exc:
            return web.json_response({"error": str(exc), "code": "PERMISSION_DENIED"}, status=403)
        request[IDENTITY] = who
        current_identity.set(who)
        if request.body_exists:  # the caller's own size limit, as over gRPC
            limit = self.gate.max_message(who)
            size = request.content_length
            if size is None:  # chunked: read it (the app's client_max_size bounds that)
                size = len(await request.read())
            if size > limit:
                return web.json_response({"error": too_large(size, limit, who), "code": "RESOURCE_EXHAUSTED"},
                                         status=413)
        return await handler(request)

    async def _record(self, request: web.Request, action: str, status: int, detail: str) -> None:
        """A control call over HTTP in the audit log, as the gRPC interceptor records one."""
        if self.audit is None:
            return
        who = request.get(IDENTITY)
        target = " ".join(f"{k}={clip(v, 100)}" for k, v in sorted(request.match_info.items()))
        entry = AuditEntry(
            at=self.now(), user=who.user if who else "", via=who.via if who else "",
            source=request.remote or "", action=action, target=target,
            outcome="ok" if status < 400 else f"HTTP {status}", detail=clip(detail, 200),
        )
        try:
            await self.audit.add_audit(entry)
        except Exception:  # the action happened; a lost audit line is logged, not raised
            log.exception("could not record %s in the audit log", action)

    # -- login ---------------------------------------------------------------------------------

    async def _login_form(self, request: web.Request) -> web.Response:
        nxt = html.escape(_safe_next(request.query.get("next", "/")))
        return web.Response(content_type="text/html", text=(
            "<!doctype html><title>Gantry: sign in</title><form method=post action=/auth/login>"
            f"<input type=hidden name=next value=\"{nxt}\">"
            "<label>User <input name=user autocomplete=username></label> "
            "<label>Password <input name=password type=password autocomplete=current-password></label> "
            "<button>Sign in</button></form>"
        ))

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if request.content_type == "application/json":
            try:
                doc = await request.json()
            except ValueError:
                return web.json_response({"error": "the body is not JSON"}, status=400)
            fields = doc if isinstance(doc, dict) else {}
        else:
            fields = dict(await request.post())
        user, password = str(fields.get("user", "")), str(fields.get("password", ""))
        nxt = _safe_next(str(fields.get("next", "/")))
        source = request.remote or "?"
        if self.gate is None or self.sessions is None:
            return web.json_response({"error": "this coordinator has no users (no auth configured)"}, status=404)
        if self.failures.blocked(source) or self.failures.blocked(f"user:{user}"):
            return web.json_response({"error": "too many failed sign-ins; wait a minute"}, status=429)
        entry = self.gate.auth.users.get(user)
        stored, groups = (entry.get("password"), entry.get("groups", ())) if isinstance(entry, dict) else (entry, ())
        if not verify_password(stored if user else None, password):
            first = [self.failures.failed(key) for key in (source, f"user:{user}")]
            if any(first):  # once per source and per user name per window, not per attempt
                log.warning("failed sign-in for %s from %s", clip(user, 64), clip(source, 64))
            return web.json_response({"error": "wrong user name or password"}, status=401)
        self.failures.succeeded(f"user:{user}")
        cookie = self.sessions.issue(Identity(user, frozenset(groups), "session"))
        cookie_args: dict[str, Any] = dict(max_age=SESSION_SECONDS, httponly=True, samesite="Lax",
                                           secure=self.secure_cookie, path="/")
        if request.content_type == "application/json":
            resp = web.json_response({"user": user, "groups": sorted(groups)})
            resp.set_cookie(COOKIE, cookie, **cookie_args)
            return resp
        redirect = web.HTTPSeeOther(nxt)  # a form post: back to the page that asked
        redirect.set_cookie(COOKIE, cookie, **cookie_args)
        raise redirect

    async def _logout(self, request: web.Request) -> web.Response:
        resp = web.json_response({"user": ""})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def _whoami(self, request: web.Request) -> web.Response:
        who = ANONYMOUS
        if self.gate is not None:
            try:
                who = await self._identify(request)
            except Unauthenticated as exc:
                return web.json_response({"error": str(exc)}, status=401)
        return web.json_response({"user": who.user, "groups": sorted(who.groups), "via": who.via,
                                  "auth": self.gate is not None})


def _safe_next(target: str) -> str:
    """Only a path on this site (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"



class QuietParseErrors(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's request-handler logger, minus the ERROR and traceback it logs for every request
    that is not valid HTTP (bad request line, header, URL): anyone could flood the log with them.
    Those become one short INFO line per client address per minute; the 400 is aiohttp's."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        self._seen = FailureLimiter(limit=1 << 30, window=60.0, now=time.monotonic)

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kw: Any) -> None:
        if isinstance(exc_info, HttpProcessingError) and exc_info.code == 400:
            remote = str(args[0]) if args else "?"
            if self._seen.failed(remote):
                log.info("bad HTTP request from %s: %s (logged once a minute per client)",
                         clip(remote, 64), clip(exc_info.message, 120))
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kw)
