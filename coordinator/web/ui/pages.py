"""The web UI's aiohttp handlers: each page is a view's data rendered by a template, or the same
data as JSON with `?format=json`; `?fragment=1` renders only the live part (what app.js refreshes)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from coordinator.web.api.backend import Backend
from coordinator.web.api.errors import HttpError, invalid, not_found
from coordinator.web.api.transcode import parse_int
from coordinator.web.ui import views
from coordinator.web.ui.present import FILTERS, GLOBALS
from protos.gantry.v1 import common_pb2

HERE = Path(__file__).parent
STATIC = HERE / "static"
View = Callable[[web.Request], Awaitable[tuple[str, dict[str, Any]]]]
# A page whose head needs no data: its template, after checking the request's query (raises
# HttpError, so a bad query is refused before any byte is sent).
Early = Callable[[web.Request], str]


class Pages:
    def __init__(self, api: Backend) -> None:
        self.api = api
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.globals.update(GLOBALS)
        # In the page, not linked: a linked stylesheet blocks the first paint for one more request,
        # which waits behind the page's own rendering on this one event loop (issue 11).
        self.env.globals["stylesheet"] = Markup(STATIC.joinpath("style.css").read_text(encoding="utf-8"))
        for name in self.env.list_templates():  # compiled now, not in a page's first request
            self.env.get_template(name)

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/", self._page(self.home, lambda r: "home.html"))
        r.add_get("/waterfall", self._page(self.waterfall, lambda r: (_limit(r, "100"), "waterfall.html")[1]))
        r.add_get("/console", self._page(self.console, lambda r: "console.html"))
        r.add_get("/grid", self._page(self.grid, lambda r: "grid.html"))
        r.add_get("/builders/{builder}", self._page(self.builder))
        r.add_get("/builders/{builder}/builds/{number}", self._page(self.build))
        r.add_get("/builders/{builder}/builds/{number}/steps/{step}/logs/{log}", self._page(self.log))
        r.add_get("/workers", self._page(self.workers))
        r.add_get("/changes", self._page(self.changes))
        r.add_static("/static", STATIC, name="static", append_version=True)

    def _page(self, view: View, early: Early | None = None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            since = self.api.last_event_id  # before reading: the stream from here misses nothing
            if early is not None and request.query.get("format") != "json" and request.query.get("fragment") != "1":
                try:
                    template = early(request)
                except HttpError as exc:
                    return self._render("error.html", {"error": exc, "status": "NONE"}, request, since, exc.status)
                return await self._stream(template, view, request, since)
            try:
                template, data = await view(request)
            except HttpError as exc:
                if request.query.get("format") == "json":
                    raise
                return self._render("error.html", {"error": exc, "status": "NONE"}, request, since, exc.status)
            if request.query.get("format") == "json":
                return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False))
            return self._render(template, data, request, since)

        return handle

    def _render(
        self, template: str, data: dict[str, Any], request: web.Request, since: int, status: int = 200
    ) -> web.Response:
        html = self._html(template, data, request, since, fragment=request.query.get("fragment") == "1")
        return web.Response(text=html, status=status, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def _stream(self, template: str, view: View, request: web.Request, since: int) -> web.StreamResponse:
        """The page's head and header first, then its content once read: the browser fetches the
        stylesheet and paints the frame while the coordinator reads the builds (a first page
        after a start converts them all to JSON)."""
        resp = web.StreamResponse(headers={"Cache-Control": "no-store"})
        resp.content_type = "text/html"
        resp.charset = "utf-8"
        await resp.prepare(request)
        await resp.write(self._html(template, {"status": "NONE"}, request, since, "head").encode())
        try:
            _, data = await view(request)
        except HttpError as exc:  # after the head: the error shows where the content would be
            template, data = "error.html", {"error": exc, "status": "NONE"}
        await resp.write(self._html(template, data, request, since, "tail").encode())
        await resp.write_eof()
        return resp

    def _html(
        self, template: str, data: dict[str, Any], request: web.Request, since: int, part: str = "",
        fragment: bool = False,
    ) -> str:
        """`part`: "head" (up to the content), "tail" (the rest) or "" (all)."""
        return self.env.get_template(template).render(
            **data, data=data, since=since, fragment=fragment, part=part, path=request.path,
            query_string=request.query_string,
            static=lambda name: str(request.app.router["static"].url_for(filename=name)),
        )

    async def home(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "home.html", await views.home(self.api, _filters(request))

    async def waterfall(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "waterfall.html", await views.waterfall(self.api, _filters(request), _limit(request, "100"))

    async def console(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "console.html", await views.console(self.api, _filters(request))

    async def grid(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "grid.html", await views.grid(self.api, _filters(request))

    async def builder(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        results = []
        for name in request.query.getall("result", []):
            if name.upper() not in common_pb2.Result.keys():
                raise invalid(f"unknown result {name!r}; known: {', '.join(common_pb2.Result.keys())}")
            results.append(common_pb2.Result.Value(name.upper()))
        before = parse_int(request.query.get("before", "0"), "before")
        branch = request.query.get("branch", "")
        test = request.query.get("test", "")
        data = await views.builder(self.api, request.match_info["builder"], before, results, branch, test)
        data["results"] = [common_pb2.Result.Name(r) for r in results]
        return "builder.html", data

    async def build(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        m = request.match_info
        return "build.html", await views.build(self.api, m["builder"], parse_int(m["number"], "number"))

    async def log(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        m = request.match_info
        data = await views.build(self.api, m["builder"], parse_int(m["number"], "number"), siblings=False)
        step = next((s for s in data["build"]["steps"] if m["step"] in (s["name"], str(s["number"]))), None)
        log = None if step is None else next((lg for lg in step["logs"] if lg["name"] == m["log"]), None)
        if step is None or log is None:
            raise not_found(f"build {m['builder']}/{m['number']} has no log "
                              f"{m['log']!r} in step {m['step']!r}")
        return "log.html", {**data, "step": step, "log": log, "status": step["status"]}

    async def workers(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "workers.html", await views.workers(self.api)

    async def changes(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        return "changes.html", await views.changes(self.api, _limit(request, "50"))


def _limit(request: web.Request, default: str) -> int:
    return min(max(parse_int(request.query.get("limit", default), "limit"), 1), 1000)


def _filters(request: web.Request) -> views.Filters:
    tags = [t for v in request.query.getall("tag", []) for t in v.split(",") if t]
    return views.Filters(tags=tags, name=request.query.get("name", ""))


def mount_ui(api: Backend) -> Callable[[web.Application], None]:
    def mount(app: web.Application) -> None:
        Pages(api).add_routes(app)

    return mount
