"""`GantryClient.subscribe` resumes by itself: against a fake StatusService that breaks the
stream midway, the client still yields every event id exactly once, in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from clients.client import GantryClient
from clients.errors import CoordinatorUnavailable, InvalidArgument
from clients.models import Result
from protos.gantry.v1 import common_pb2, status_pb2, status_pb2_grpc
from tests.net import reserved_port

FAST = (0.001, 0.01)


def make_events(n: int) -> list[status_pb2.Event]:
    events = []
    for i in range(1, n + 1):
        ev = status_pb2.Event(
            id=i,
            kind="build.finished" if i % 2 else "step.started",
            builder="b",
            build_number=i,
            step_number=-1,
            result=common_pb2.FAILURE,
            details_json=json.dumps({"n": i}),
        )
        ev.at.FromSeconds(1_700_000_000 + i)
        events.append(ev)
    return events


class FakeStatus(status_pb2_grpc.StatusServiceServicer):
    """Replays `events` after `since_event_id`; on attempt k, aborts with `breaks[k]` after
    sending the event with id `break_after[k]`; then holds the stream open."""

    def __init__(
        self,
        events: list[status_pb2.Event],
        breaks: dict[int, tuple[int, grpc.StatusCode]] | None = None,
        replay_overlap: int = 0,
    ) -> None:
        self.events = events
        self.breaks = breaks or {}
        self.replay_overlap = replay_overlap
        self.requests: list[int] = []
        self._forever = asyncio.Event()

    async def Subscribe(
        self, request: status_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[status_pb2.Event]:
        self.requests.append(request.since_event_id)
        attempt = len(self.requests)
        start = max(request.since_event_id, 0)
        if attempt > 1:
            start -= self.replay_overlap  # a sloppy server replaying a little too much
        for event in self.events:
            if event.id <= start:
                continue
            yield event
            stop = self.breaks.get(attempt)
            if stop is not None and event.id == stop[0]:
                await context.abort(stop[1], "you were too slow")
        await self._forever.wait()


async def start_server(servicer: FakeStatus, port: int = 0) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    status_pb2_grpc.add_StatusServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


async def collect(client: GantryClient, count: int, since: int = 0) -> list[int]:
    ids: list[int] = []
    async for event in client.subscribe(since_event_id=since):
        ids.append(event.id)
        if len(ids) == count:
            break
    return ids


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE]
)
async def test_resumes_after_the_server_ends_the_stream(code: grpc.StatusCode) -> None:
    servicer = FakeStatus(make_events(10), breaks={1: (4, code), 2: (7, code)})
    server, port = await start_server(servicer)
    try:
        async with GantryClient(f"127.0.0.1:{port}", reconnect_backoff=FAST) as client:
            ids = await asyncio.wait_for(collect(client, 10), 30)
    finally:
        await server.stop(None)
    assert ids == list(range(1, 11))
    assert servicer.requests == [0, 4, 7]


async def test_events_replayed_after_resume_are_not_repeated() -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    servicer = FakeStatus(make_events(8), breaks={1: (5, code)}, replay_overlap=3)
    server, port = await start_server(servicer)
    try:
        async with GantryClient(f"127.0.0.1:{port}", reconnect_backoff=FAST) as client:
            ids = await asyncio.wait_for(collect(client, 8), 30)
    finally:
        await server.stop(None)
    assert ids == list(range(1, 9))
    assert servicer.requests == [0, 5]


async def test_resumes_across_a_coordinator_restart() -> None:
    events = make_events(6)
    first = FakeStatus(events[:3])
    server, port = await start_server(first)
    second = FakeStatus(events)
    ids: list[int] = []
    async with GantryClient(f"127.0.0.1:{port}", reconnect_backoff=FAST) as client:
        stream = client.subscribe(since_event_id=0)
        try:
            async with asyncio.timeout(30):
                async for event in stream:
                    ids.append(event.id)
                    if event.id == 3:
                        await server.stop(None)  # the coordinator goes away...
                        server, _ = await start_server(second, port)  # ...and comes back
                    if len(ids) == 6:
                        break
        finally:
            await stream.aclose()
            await server.stop(None)
    assert ids == [1, 2, 3, 4, 5, 6]
    assert second.requests == [3]


async def test_events_are_converted() -> None:
    server, port = await start_server(FakeStatus(make_events(2)))
    try:
        async with GantryClient(f"127.0.0.1:{port}") as client:
            stream = client.subscribe(since_event_id=0)
            first = await anext(stream)
            second = await anext(stream)
            await stream.aclose()
    finally:
        await server.stop(None)
    assert first.kind == "build.finished" and first.result is Result.FAILURE
    assert first.details == {"n": 1} and first.at is not None and first.at.year == 2023
    assert second.kind == "step.started" and second.result is None


class RejectingStatus(status_pb2_grpc.StatusServiceServicer):
    async def Subscribe(
        self, request: status_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[status_pb2.Event]:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown kind 'nope'")
        yield status_pb2.Event()  # pragma: no cover - makes this an async generator


async def test_a_rejected_subscription_raises() -> None:
    server = grpc.aio.server()
    status_pb2_grpc.add_StatusServiceServicer_to_server(RejectingStatus(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with GantryClient(f"127.0.0.1:{port}", reconnect_backoff=FAST) as client:
            with pytest.raises(InvalidArgument, match="unknown kind 'nope'"):
                await collect(client, 1)
    finally:
        await server.stop(None)


async def test_an_unreachable_coordinator_raises_at_once() -> None:
    with reserved_port() as port:  # refused, and no one else's meanwhile
        address = f"127.0.0.1:{port}"
        async with GantryClient(address) as client:
            with pytest.raises(CoordinatorUnavailable, match=f"cannot reach the coordinator at {address}"):
                await asyncio.wait_for(collect(client, 1), 30)
