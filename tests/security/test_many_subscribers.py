"""2 000 Subscribe streams opened at once on one connection each receive the next event (before
the fix grpc cancelled ~10% of them before any handler ran: its pending-call limits)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from protos.gantry.v1 import changes_pb2, changes_pb2_grpc, common_pb2, status_pb2, status_pb2_grpc

N = 2000
pytestmark = pytest.mark.timeout(240)


async def test_every_one_of_2000_subscribers_receives_the_event(tmp_path: Path) -> None:
    coord = Coordinator(MasterConfig(), tmp_path / "d", "127.0.0.1:0")
    await coord.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{coord.port}") as ch:
            stub = status_pb2_grpc.StatusServiceStub(ch)
            calls = [stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=-1, kinds=["change.added"]))
                     for _ in range(N)]
            # Initial metadata: the subscription is live (or the call already ended, see below).
            await asyncio.wait_for(asyncio.gather(*(c.initial_metadata() for c in calls)), 180)
            ended = [c for c in calls if c.done()]
            assert not ended, f"{len(ended)} streams ended: {await ended[0].code()}"
            await changes_pb2_grpc.ChangeServiceStub(ch).SubmitChanges(changes_pb2.SubmitChangesRequest(
                changes=[common_pb2.Change(author="a", repository="r", branch="main", revision="1")]), timeout=60)
            firsts = await asyncio.wait_for(asyncio.gather(*(c.read() for c in calls)), 180)
            assert all(getattr(e, "kind", None) == "change.added" for e in firsts)
            for c in calls:
                c.cancel()
    finally:
        await coord.aclose()
