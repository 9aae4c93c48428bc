"""HttpStatusPush against a real local HTTP server (asyncio): the JSON documents for build
started/finished, the HMAC signature, filters, and retries when the server answers 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from coordinator.domain.results import Result
from notifiers.base import DeliveryError
from notifiers.http_push import SIGNATURE_HEADER, HttpStatusPush
from notifiers.service import NotificationService
from tests.net import reserved_port
from tests.notifiers.conftest import Store, eventually, run_build


@dataclass
class HttpServer:
    port: int
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode()
        headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode().strip()):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if self.fail_first > 0:
            self.fail_first -= 1
            writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            self.requests.append((request_line.split()[1], headers, body))
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    srv = HttpServer(0)
    srv.server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = srv.server.sockets[0].getsockname()[1]
    yield srv
    srv.server.close()
    await srv.server.wait_closed()


async def test_documents_for_started_and_finished_builds_signed_with_hmac(
    store: Store, http_server: HttpServer
) -> None:
    push = HttpStatusPush(f"http://127.0.0.1:{http_server.port}/hook?x=1", secret="k3y", builders=["b"])
    svc = NotificationService(
        builds=store.db.builds, logs=store.db.logs, events=store.db.events, outbox=store.db.outbox,
        bus=store.bus, notifiers=[push], retry_base=0.05, poll_interval=0.05)
    await svc.start()
    try:
        await run_build(store.db, "other", Result.FAILURE)  # filtered out
        await run_build(store.db, "b", Result.FAILURE, log_text="boom\n")
        await eventually(lambda: len(http_server.requests) == 2, what="two POSTs")
    finally:
        await svc.aclose()
    docs: dict[str, dict[str, Any]] = {}
    for path, headers, body in http_server.requests:
        assert path == "/hook?x=1" and headers["content-type"] == "application/json"
        expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == expected
        doc = json.loads(body)
        docs[doc["event"]] = doc
    started, finished = docs["build.started"], docs["build.finished"]
    assert (started["builder"], started["number"], started["result"]) == ("b", 1, None)
    assert (finished["result"], finished["result_code"], finished["failing_step"]) == ("FAILURE", 2, "test")
    assert finished["changes"][0]["author"] == "Jane Doe <jane@example.org>"
    assert finished["url"] == "gantry build b 1"


async def test_retries_with_backoff_until_the_server_accepts(store: Store, http_server: HttpServer) -> None:
    http_server.fail_first = 2
    push = HttpStatusPush(f"http://127.0.0.1:{http_server.port}/", sendStarted=False, mode="failing")
    svc = NotificationService(
        builds=store.db.builds, logs=store.db.logs, events=store.db.events, outbox=store.db.outbox,
        bus=store.bus, notifiers=[push], retry_base=0.05, poll_interval=0.05)
    await svc.start()
    try:
        await run_build(store.db, "b", Result.SUCCESS)  # mode failing: nothing
        await run_build(store.db, "b", Result.FAILURE)

        async def sent() -> list[Any]:
            return await store.db.outbox.list_notifications(10, "sent")

        (n,) = await eventually(sent, what="delivered")
    finally:
        await svc.aclose()
    assert n.attempts == 3 and n.kind == "http"
    assert len(http_server.requests) == 1
    assert json.loads(http_server.requests[0][2])["number"] == 2


async def test_errors_and_timeouts_are_delivery_errors(http_server: HttpServer) -> None:
    with reserved_port() as nobody:
        down = HttpStatusPush(f"http://127.0.0.1:{nobody}/", timeout=2)
        with pytest.raises(DeliveryError, match="POST"):
            await down.deliver({"body": "{}"})
    http_server.fail_first = 1
    with pytest.raises(DeliveryError, match="HTTP 500"):
        await HttpStatusPush(f"http://127.0.0.1:{http_server.port}/").deliver({"body": "{}"})

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(DeliveryError, match="no answer within 0.2s"):
            await HttpStatusPush(f"http://127.0.0.1:{port}/", timeout=0.2).deliver({"body": "{}"})
    finally:
        server.close()


def test_configuration_errors() -> None:
    assert HttpStatusPush("ftp://x/").errors == ["url must be an http:// or https:// URL, not 'ftp://x/'"]
    assert "timeout" in HttpStatusPush("http://x/", timeout=0).errors[0]


async def test_a_started_document_read_after_the_build_finished_describes_it_as_started(store: Store) -> None:
    """A busy service may handle build.started after the build has finished: the document still
    describes the build as it started, not its end."""
    push = HttpStatusPush("http://127.0.0.1:9/hook", builders=["b"])
    svc = NotificationService(builds=store.db.builds, logs=store.db.logs, events=store.db.events,
                              outbox=store.db.outbox, bus=store.bus, notifiers=[push])
    await run_build(store.db, "b", Result.FAILURE, log_text="boom\n")
    [started] = [e for e in await store.db.events.events_after(0, 100) if e.kind == "build.started"]
    await svc.handle(started)
    [queued] = await store.db.outbox.list_notifications(10)
    doc = json.loads(queued.payload["body"])
    assert (doc["event"], doc["result"], doc["finished_at"], doc["failing_step"]) == ("build.started", None, None, None)
