"""Hostile input: bytes that are not a message, a bad HTTP request line, huge header values,
floods of control calls and of streams. Each gets a clear status and at most a short log line,
never a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from coordinator.api.interceptors.limits import ClientLimits
from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from coordinator.logsafe import clip
from protos.gantry.v1 import control_pb2, control_pb2_grpc, status_pb2, status_pb2_grpc

JUNK = b"\xff\xff\xff\xff\x0f" + b"\x00" * 3


@pytest.fixture
async def coord(tmp_path: Path) -> AsyncIterator[Coordinator]:
    cfg = MasterConfig(www=dict(change_hook_dialects={"github": {}}))
    c = Coordinator(cfg, tmp_path / "d", "127.0.0.1:0", http="127.0.0.1:0",
                    limits=ClientLimits(control_rate=1e-9, control_burst=3, max_streams=2))
    await c.start()
    try:
        yield c
    finally:
        await c.aclose()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()]
    assert not bad, [r.getMessage()[:200] for r in bad]


async def test_bytes_that_are_not_a_message_are_invalid_argument(
    coord: Coordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{coord.port}") as ch:
        raw = bytes
        for method in ("/gantry.v1.ControlService/GetBuild", "/gantry.v1.ChangeService/SubmitChanges"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ch.unary_unary(method, request_serializer=raw, response_deserializer=raw)(JUNK, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
            assert "not a valid message" in (err.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in ch.unary_stream("/gantry.v1.StatusService/Subscribe", request_serializer=raw,
                                           response_deserializer=raw)(JUNK, timeout=30):
                pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            call = ch.stream_stream("/gantry.v1.WorkerService/Connect", request_serializer=raw,
                                    response_deserializer=raw)(iter([JUNK]), timeout=30)
            async for _ in call:
                pass
        assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED)
    no_tracebacks(caplog)


async def test_a_bad_http_request_line_is_a_400_without_a_traceback(
    coord: Coordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # aiohttp notes the parse error at DEBUG only
    host, _, port = coord.http_address.rpartition(":")
    for junk in (b"\x16\x03\x01 garbage\r\n\r\n", b"GET /\x00 HTTP/1.1\r\n\r\n",
                 b"POST /change_hook/github HTTP/1.1\r\nBad Header\r\n\r\n"):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(junk)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        assert status_line.split(b" ")[1] == b"400", (junk, status_line)
    no_tracebacks(caplog)


async def test_a_huge_webhook_header_is_logged_short_and_escaped(
    coord: Coordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    event = "push\n2026-01-01 ERROR forged line " + "x" * 5000
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{coord.http_address}/change_hook/github", data=b"{}",
                             headers={"X-GitHub-Event": event.replace("\n", " "),
                                      "Content-Type": "application/json"}) as r:
            assert r.status in (200, 400)
    lines = [r.getMessage() for r in caplog.records if "webhook" in r.getMessage()]
    assert lines and all(len(line) < 600 for line in lines), [len(line) for line in lines]
    assert "\n" not in clip(event) and len(clip(event)) < 260 and "(+" in clip(event)


async def test_control_calls_are_rate_limited_per_client(coord: Coordinator) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{coord.port}") as ch:
        stub = control_pb2_grpc.ControlServiceStub(ch)
        codes = []
        for _ in range(5):
            try:
                await stub.ForceBuild(control_pb2.ForceBuildRequest(builder="nope"), timeout=30)
            except grpc.aio.AioRpcError as err:
                codes.append(err.code())
        assert codes[:3] == [grpc.StatusCode.NOT_FOUND] * 3
        assert codes[3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
        # Reads are not rate-limited.
        for _ in range(5):
            await stub.ListBuilders(control_pb2.ListBuildersRequest(), timeout=30)


async def test_open_streams_are_capped_per_client(coord: Coordinator) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{coord.port}") as ch:
        stub = status_pb2_grpc.StatusServiceStub(ch)
        first = stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=-1))
        second = stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=-1))
        await first.initial_metadata()
        await second.initial_metadata()
        third = stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=-1))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in third:
                pass
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many open streams" in (err.value.details() or "")
        first.cancel()
        second.cancel()
