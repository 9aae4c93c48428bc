"""The API's aiohttp handlers: the transcoded routes, the event stream, raw logs and artifacts,
and the OpenAPI description. Thin: parse, call the servicer, write JSON."""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.protobuf.message_factory import GetMessageClass

from coordinator.domain.errors import GantryError
from coordinator.domain.status.feed import MAX_READ
from coordinator.web.api import sse
from coordinator.web.api.backend import Backend
from coordinator.web.api.errors import HttpError, invalid, not_found
from coordinator.web.api.openapi import openapi
from coordinator.web.api.routes import BUILD, LOG, OTHER, ROUTES, Route
from coordinator.web.api.transcode import from_json, from_params, parse_int, to_json
from protos.gantry.v1 import control_pb2, status_pb2

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(doc, separators=(",", ":"), ensure_ascii=False),
        status=status, content_type="application/json",
    )


def error_response(exc: HttpError) -> web.Response:
    return json_response(exc.body(), exc.status)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Expected errors become JSON with their status; unexpected ones a 500 that says where to look
    (the traceback goes to the log once, never to the client)."""
    try:
        return await handler(request)
    except HttpError as exc:
        return error_response(exc)
    except GantryError as exc:
        return error_response(HttpError.of(exc))
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return json_response({"error": exc.reason, "code": "HTTP"}, exc.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return json_response({"error": "internal error; see the coordinator's log", "code": "INTERNAL"}, 500)


class ApiHandlers:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.streams: set[asyncio.Task[Any]] = set()  # open event streams, ended on shutdown
        self.closing = False

    async def on_shutdown(self, app: web.Application) -> None:
        """Streams never end by themselves: end them, so the server stops at once (the browser
        reconnects with Last-Event-ID to whichever coordinator answers next)."""
        self.closing = True
        for task in list(self.streams):
            task.cancel()

    def _streaming(self, handler: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            assert task is not None
            self.streams.add(task)
            try:
                return await handler(request)
            except asyncio.CancelledError:
                resp = request.get(sse.RESPONSE)
                if not self.closing or resp is None:
                    raise
                # Our own shutdown: end the stream cleanly, as a finished response.
                task.uncancel()
                await resp.write_eof()
                return resp
            finally:
                self.streams.discard(task)

        return handle

    def add_routes(self, app: web.Application) -> None:
        app.on_shutdown.append(self.on_shutdown)
        r = app.router
        r.add_get("/api/v1/openapi.json", self.openapi)
        other: dict[str, Handler] = {  # by path: ReadLog is served twice (bytes, and their times)
            "/api/v1/events": self._streaming(self.events),
            BUILD + "/watch": self._streaming(self.watch_build),
            LOG + "/follow": self._streaming(self.follow_log),
            LOG + "/raw": self.raw_log,
            LOG + "/times": self.log_times,
            BUILD + "/artifacts/{name}": self.artifact,
        }
        for route in OTHER:
            r.add_route(route.method, route.path, other[route.path])
        for route in ROUTES:
            r.add_route(route.method, route.path, self._transcoded(route))

    def _transcoded(self, route: Route) -> Handler:
        request_cls = GetMessageClass(route.descriptor.input_type)

        async def handle(request: web.Request) -> web.StreamResponse:
            fixed = dict(request.match_info)
            if route.method == "GET":
                params: dict[str, list[str]] = {}
                for k, v in request.query.items():
                    params.setdefault(k, []).append(v)
                msg = from_params(params, request_cls, fixed)
            else:
                body = await request.read()
                try:
                    doc = json.loads(body) if body.strip() else {}
                except ValueError as exc:
                    raise invalid(f"the body is not JSON: {exc}") from None
                if not isinstance(doc, dict):
                    raise invalid("the body must be a JSON object")
                path_msg = from_params({}, request_cls, fixed)
                msg = from_json(doc, request_cls)
                msg.MergeFrom(path_msg)  # the path wins over the body, as in grpc-gateway
            reply = await self.backend.call(route.service, route.rpc, msg)
            return json_response(to_json(reply))

        return handle

    async def openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi())

    async def events(self, request: web.Request) -> web.StreamResponse:
        """`Subscribe` as Server-Sent Events: `since` (or the `Last-Event-ID` header, which wins),
        `builders`, `kinds`, `buildset_id`, `worker` as in SubscribeRequest."""
        q = request.query
        params = {k: q.getall(k) for k in q if k != "since"}
        msg = from_params(params, status_pb2.SubscribeRequest, {})
        since = request.headers.get("Last-Event-ID") or q.get("since", "-1")
        try:
            msg.since_event_id = int(since)
        except ValueError:
            raise invalid(f"since must be an event id (an integer), not {since!r}") from None
        context = _SseContext(request)
        stream = self.backend.status.Subscribe(msg, context)
        try:
            async for event in sse.with_heartbeat(context.beat, stream):
                await sse.send(await context.response(), to_json(event), event.id)
        except _Overflow as exc:
            await sse.send(await context.response(), {"error": str(exc)}, event="overflow")
        except GantryError as exc:
            if context.resp is None:
                raise
            await sse.send(context.resp, HttpError.of(exc).body(), event="error")
        except ConnectionResetError:
            pass
        return await context.response()

    async def watch_build(self, request: web.Request) -> web.StreamResponse:
        """WatchBuild as Server-Sent Events: each `data:` is a BuildUpdate (the build's full state,
        then again after each of its events, whose id is the SSE id); an `end` event closes it
        when the build has finished. A reconnect starts with the full state again: nothing to
        resume from but the present, so nothing is missed."""
        m = request.match_info
        msg = status_pb2.WatchBuildRequest(builder=m["builder"], number=parse_int(m["number"], "number"))
        updates = self.backend.status.WatchBuild(msg, None)
        try:
            first = await anext(updates)  # an unknown build is a 404, before the stream opens
        except GantryError as exc:
            raise HttpError.of(exc) from None
        resp = await sse.open_stream(request)
        try:
            await sse.send(resp, to_json(first))
            async for update in sse.with_heartbeat(sse.heartbeat(resp), updates):
                await sse.send(resp, to_json(update), update.event.id)
            # EventSource reconnects when a stream ends; `end` tells a client not to.
            await sse.send(resp, {"builder": msg.builder, "number": msg.number}, event="end")
        except ConnectionResetError:
            pass
        finally:
            await updates.aclose()
        return resp

    async def _log_info(self, request: web.Request) -> tuple[int, int, bool]:
        m = request.match_info
        number = parse_int(m["number"], "number")
        info = await self.backend.logs.reader.find(m["builder"], number, m["step"], m["log"])
        if info is None:
            raise not_found(f"no log {m['log']!r} for step {m['step']!r} of build {m['builder']}/{number}")
        return info.id, info.size, info.complete

    async def raw_log(self, request: web.Request) -> web.StreamResponse:
        """The log's bytes (all channels in arrival order), streamed; `Range: bytes=A-B` reads a
        slice, so a viewer opens a 200 MB log at once and pages through it."""
        log_id, size, complete = await self._log_info(request)
        start, end = 0, size
        status = 200
        rng = request.headers.get("Range", "")
        if rng:
            m = RANGE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1) if m.group(2) else size
            else:  # the last N bytes
                start = max(0, size - int(m.group(2)))
            if start >= size and size > 0 or end <= start and size > 0:
                raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
            status = 206
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Accept-Ranges": "bytes",
            "X-Log-Complete": "true" if complete else "false",
            "Cache-Control": "no-cache",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{max(start, end - 1)}/{size}"
        if request.query.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{_filename(request)}.log"'
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = end - start
        await resp.prepare(request)
        offset = start
        while offset < end:
            part = await self.backend.logs.reader.read(log_id, offset, min(MAX_READ, end - offset), 0)
            if not part.data:
                break
            await resp.write(part.data)
            offset += len(part.data)
        await resp.write_eof()
        return resp

    async def log_times(self, request: web.Request) -> web.Response:
        """When the bytes [offset, offset+limit) of the log were produced, as plain JSON numbers
        ({"offset", "size", "times": [[offset, unix_ms], ...]}): the viewer fetches it beside
        the raw range it shows (ReadLog has the same marks, next to base64 data)."""
        log_id, size, _ = await self._log_info(request)
        offset = parse_int(request.query.get("offset", "0"), "offset")
        limit = parse_int(request.query.get("limit", str(MAX_READ)), "limit")
        if offset < 0 or limit < 0:
            raise invalid("offset and limit must not be negative")
        part = await self.backend.logs.reader.read(log_id, offset, limit, 0)
        return json_response({"offset": offset, "size": size, "times": part.times})

    async def follow_log(self, request: web.Request) -> web.StreamResponse:
        """FollowLog as Server-Sent Events: each event's id is the byte offset after its text, so a
        reconnect (Last-Event-ID) continues where it stopped; an `eof` event ends it."""
        log_id, _, _ = await self._log_info(request)
        offset = parse_int(request.headers.get("Last-Event-ID") or request.query.get("offset", "0"), "offset")
        if offset < 0:
            raise invalid("offset must not be negative")
        resp = await sse.open_stream(request)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            parts = self.backend.logs.reader.follow(log_id, offset, 0)
            async for part in sse.with_heartbeat(sse.heartbeat(resp), parts):
                offset = part.offset + len(part.data)
                text = decoder.decode(part.data, final=part.eof)
                doc = {"offset": part.offset, "text": text, "eof": part.eof, "times": part.times}
                await sse.send(resp, doc, offset)
                if part.eof:
                    await sse.send(resp, {"offset": offset}, event="eof")
                    break
        except ConnectionResetError:
            pass
        return resp

    async def artifact(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        req = control_pb2.DownloadArtifactRequest(
            builder=m["builder"], number=parse_int(m["number"], "number"), name=m["name"])
        chunks = self.backend.control.DownloadArtifact(req, None)
        try:
            first = await anext(chunks)
        except GantryError as exc:
            raise HttpError.of(exc) from None
        name = first.artifact.name.rsplit("/", 1)[-1] or "artifact"
        resp = web.StreamResponse(headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name}"',
        })
        await resp.prepare(request)
        async for chunk in chunks:
            await resp.write(chunk.data)
        await resp.write_eof()
        return resp


class _Overflow(Exception):
    pass


class _SseContext:
    """What StatusServicer.Subscribe needs of a gRPC context, over an SSE response: the initial
    metadata opens the stream (the subscription is live from then on), abort ends it."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.resp: web.StreamResponse | None = None

    async def response(self) -> web.StreamResponse:
        if self.resp is None:
            self.resp = await sse.open_stream(self.request)
        return self.resp

    async def beat(self) -> None:
        await (await self.response()).write(b": keep-alive\n\n")

    async def send_initial_metadata(self, metadata: Any) -> None:
        await self.response()

    async def abort(self, code: Any, details: str) -> None:
        raise _Overflow(details)


def _filename(request: web.Request) -> str:
    m = request.match_info
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{m['builder']}-{m['number']}-{m['step']}-{m['log']}")


def mount_api(backend: Backend) -> Callable[[web.Application], None]:
    """What the WebServer calls to add the API to its application."""

    def mount(app: web.Application) -> None:
        app.middlewares.append(api_errors)
        ApiHandlers(backend).add_routes(app)

    return mount
