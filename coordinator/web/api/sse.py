"""Server-Sent Events: one response that stays open, `id:` on each event so the browser's
EventSource resumes with `Last-Event-ID` after a disconnect, and a comment line now and then so
proxies and the browser keep the connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

HEARTBEAT = 15.0
RESPONSE = "sse_response"  # the request's open stream, for a clean end on shutdown
T = TypeVar("T")


async def open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
    })
    await resp.prepare(request)
    request[RESPONSE] = resp
    await resp.write(b"retry: 1000\n\n")  # reconnect after 1 s (the browser's default is 3)
    return resp


async def send(resp: web.StreamResponse, data: Any, event_id: int | None = None, event: str = "") -> None:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    await resp.write(("\n".join(lines) + "\n\n").encode())


async def with_heartbeat(beat: Callable[[], Awaitable[None]], items: AsyncIterator[T]) -> AsyncIterator[T]:
    """The items of `items`, calling `beat` (which writes a comment line) whenever none came for
    HEARTBEAT seconds: a closed connection then ends the stream instead of waiting for an event."""
    it = aiter(items)
    pending: asyncio.Task[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(it))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT)
            if not done:
                await beat()
                continue
            task, pending = pending, None
            try:
                yield task.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()


def heartbeat(resp: web.StreamResponse) -> Callable[[], Awaitable[None]]:
    async def beat() -> None:
        await resp.write(b": keep-alive\n\n")

    return beat
