"""Scenario `subscribers`: N concurrent Subscribe streams (10 000; 1 000 with --quick) on a few
connections, then E events: is delivery complete (every stream gets every event), what is the
lag from commit to arrival (p50/p99), and what does one subscriber cost the coordinator (RSS)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc

from bench.harness import BenchError
from bench.metrics import ScenarioResult
from protos.gantry.v1 import changes_pb2, status_pb2, status_pb2_grpc

if TYPE_CHECKING:
    from bench.scenarios import Options

MiB = 1024 * 1024
STREAMS_PER_CHANNEL = 1000
EVENTS = 20


async def subscribers(opts: Options) -> ScenarioResult:
    from bench.scenarios import change, cluster, one_builder_spec, pct, steady_rss

    res = ScenarioResult("subscribers")
    n = 1000 if opts.quick else 10_000
    async with cluster("subscribers", opts, one_builder_spec(["true"], 1), []) as cl:
        await cl.connected_workers()  # warm up the server path
        rss0 = await asyncio.to_thread(steady_rss, cl.coord.pid)
        channels = [grpc.aio.insecure_channel(cl.coord.address, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(-(-n // STREAMS_PER_CHANNEL))]
        arrivals: list[list[float]] = [[] for _ in range(n)]
        calls = []
        try:
            for i in range(n):
                stub = status_pb2_grpc.StatusServiceStub(channels[i // STREAMS_PER_CHANNEL])
                calls.append(stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=-1, kinds=["change.added"])))
            t0 = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*(c.initial_metadata() for c in calls)), 300)
            t_open = time.perf_counter() - t0
            ended = sum(1 for c in calls if c.done())
            if ended:
                raise BenchError(f"{ended}/{n} streams ended before any event: {await calls[0].code()}")
            rss_n = await asyncio.to_thread(steady_rss, cl.coord.pid)

            async def read(i: int) -> None:
                async for _ in calls[i]:
                    arrivals[i].append(time.perf_counter())
                    if len(arrivals[i]) == EVENTS:
                        return

            readers = [asyncio.ensure_future(read(i)) for i in range(n)]
            sent: list[float] = []
            for e in range(EVENTS):
                t = time.perf_counter()
                await cl.changes.SubmitChanges(changes_pb2.SubmitChangesRequest(changes=[change(e)]), timeout=60)
                sent.append(t)
                await asyncio.sleep(0.05)
            done, pending = await asyncio.wait(readers, timeout=120)
            for p in pending:
                p.cancel()
        finally:
            for c in calls:
                c.cancel()
            for ch in channels:
                await ch.close(grace=None)
    complete = sum(1 for a in arrivals if len(a) == EVENTS)
    lags = [(a[e] - sent[e]) * 1000 for a in arrivals for e in range(len(a))]
    res.values["delivered complete"] = 100.0 * complete / n
    if lags:
        res.values["lag p50"] = pct(lags, 50)
        res.values["lag p99"] = pct(lags, 99)
    res.values["RSS per subscriber"] = (rss_n - rss0) / n / 1024
    res.notes.append(
        f"subscribers: {n} streams on {len(channels)} connections opened in {t_open:.1f} s; {complete}/{n} received "
        f"all {EVENTS} events; RSS {rss0 / MiB:.0f} → {rss_n / MiB:.0f} MiB; lag = submit start → arrival"
    )
    return res
