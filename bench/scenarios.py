"""The four Gantry scenarios. Each starts a fresh coordinator (SQLite, temp dir, loopback),
measures, and tears everything down, within a time bound."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.harness import (
    BenchError,
    BuilderSpec,
    ClusterSpec,
    Coordinator,
    PeakRss,
    Proc,
    Workspace,
    cpu_seconds,
    proc_status_kib,
    rss_bytes,
    start_worker,
    stop_all,
)
from bench.light_workers import LightWorkerFleet
from bench.metrics import ScenarioResult
from bench.subscribers import subscribers
from protos.gantry.v1 import (
    changes_pb2,
    changes_pb2_grpc,
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
)

MiB = 1024 * 1024
LINE = 1024  # bytes per output line of the log step


@dataclass
class Options:
    quick: bool = False
    keep: bool = False
    verbose: bool = False
    latency_samples: int = 50
    throughput_builds: int = 500
    throughput_workers: int = 4
    submit_batch: int = 50
    log_mb: int = 50
    log_runs: int = 3
    idle_workers: int = 500
    reattach_builds: int = 100  # running builds cut off at once in the reattach scenario
    fault_builds: int = 200  # builds of the faults scenario
    fault_kills: int = 20  # coordinator SIGKILLs during them
    profile_dir: Path | None = None  # py-spy profiles of the coordinator go here

    @classmethod
    def make(cls, quick: bool, keep: bool = False, verbose: bool = False,
             profile_dir: Path | None = None) -> Options:
        if quick:
            return cls(quick=True, keep=keep, verbose=verbose, latency_samples=20,
                       throughput_builds=100, log_mb=10, idle_workers=100, reattach_builds=20,
                       fault_builds=40, fault_kills=5,
                       profile_dir=profile_dir)
        return cls(keep=keep, verbose=verbose, profile_dir=profile_dir)


def say(opts: Options, msg: str) -> None:
    if opts.verbose:
        print(f"  {msg}", file=sys.stderr, flush=True)


# -- helpers ---------------------------------------------------------------------------------


def change(i: int, branch: str = "main") -> common_pb2.Change:
    return common_pb2.Change(
        author="Bench <bench@example.org>", comments=f"bench change {i}", files=["src/main.c"],
        revision=f"{i:040x}", branch=branch, repository="https://example.org/bench.git", project="bench",
    )


class EventTap:
    """Follows the status stream from the beginning of history (a fresh coordinator: no race
    between subscribing and submitting) and records when each event arrived."""

    KINDS = ["change.added", "buildset.added", "build.started", "step.started", "step.finished",
             "build.finished", "buildset.finished"]

    def __init__(self, channel: grpc.aio.Channel, kinds: list[str] | None = None) -> None:
        self.stub = status_pb2_grpc.StatusServiceStub(channel)
        self.kinds = kinds or self.KINDS
        self.change_bs: dict[int, int] = {}  # change id -> buildset id
        self.bs_finished: dict[int, float] = {}  # buildset id -> perf_counter at arrival
        self.builds_finished: list[tuple[float, status_pb2.Event]] = []
        self.events: list[tuple[float, status_pb2.Event]] = []  # (arrival wall clock, event)
        self.keep_all = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-tap")

    async def _run(self) -> None:
        call = self.stub.Subscribe(status_pb2.SubscribeRequest(since_event_id=0, kinds=self.kinds))
        try:
            async for ev in call:
                now = time.perf_counter()
                if ev.kind == "buildset.added":
                    for cid in json.loads(ev.details_json or "{}").get("change_ids", []):
                        self.change_bs[int(cid)] = ev.buildset_id
                elif ev.kind == "buildset.finished":
                    self.bs_finished[ev.buildset_id] = now
                elif ev.kind == "build.finished":
                    self.builds_finished.append((now, ev))
                if self.keep_all:
                    self.events.append((time.time(), ev))
                self._changed.set()
        except asyncio.CancelledError:
            call.cancel()
            raise
        except BaseException as exc:
            self.error = exc
            self._changed.set()

    async def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if self.error is not None:
                raise BenchError(f"status stream failed: {self.error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
            self._changed.clear()
            if pred():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@dataclass
class Cluster:
    ws: Workspace
    coord: Coordinator
    channel: grpc.aio.Channel
    workers: list[Proc] = field(default_factory=list)

    @property
    def changes(self) -> changes_pb2_grpc.ChangeServiceStub:
        return changes_pb2_grpc.ChangeServiceStub(self.channel)

    @property
    def control(self) -> control_pb2_grpc.ControlServiceStub:
        return control_pb2_grpc.ControlServiceStub(self.channel)

    async def connected_workers(self) -> int:
        resp = await self.control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=30)
        return sum(1 for w in resp.workers if w.connected)

    async def wait_workers(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (got := await self.connected_workers()) < n:
            if not self.coord.proc.alive():
                raise BenchError(f"coordinator died{self.coord.proc.tail()}")
            for w in self.workers:
                if not w.alive():
                    raise BenchError(f"{w.name} died{w.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"only {got}/{n} workers connected after {timeout:g}s")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def cluster(
    name: str, opts: Options, spec: ClusterSpec, agents: list[tuple[str, str, int]], coord_args: tuple[str, ...] = ()
) -> AsyncIterator[Cluster]:
    """A coordinator plus real worker agents (`agents`: name, secret, max_builds)."""
    with Workspace(name, keep=opts.keep) as ws:
        coord = Coordinator(ws.path, spec, coord_args)
        procs: list[Proc] = []
        profiler: Proc | None = None
        channel: grpc.aio.Channel | None = None
        try:
            address = await asyncio.to_thread(coord.wait_ready, 60.0)
            say(opts, f"coordinator pid {coord.pid} at {address}")
            channel = grpc.aio.insecure_channel(
                address, options=[("grpc.max_receive_message_length", 64 * MiB)]
            )
            cl = Cluster(ws, coord, channel, procs)
            if opts.profile_dir is not None:
                profiler = start_profiler(ws.path, opts.profile_dir, name, coord.pid)
            for wname, secret, mb in agents:
                procs.append(start_worker(ws.path, address, wname, secret, mb))
            if agents:
                await cl.wait_workers(len(agents), 60)
                say(opts, f"{len(agents)} worker agent(s) connected")
            yield cl
        finally:
            if channel is not None:
                await channel.close(grace=None)
            if profiler is not None and opts.profile_dir is not None:  # SIGINT: py-spy writes its output
                profiler.signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(profiler.popen.wait, 30.0)
                await asyncio.to_thread(profiler.stop, 5.0)
                say(opts, f"profile: {opts.profile_dir / (name + '.coordinator.txt')}{profiler.tail(3)}")
            await asyncio.to_thread(stop_all, [*procs, coord.proc])


def start_profiler(root: Path, out_dir: Path, name: str, pid: int) -> Proc:
    """`py-spy record` of the coordinator for the whole scenario (collapsed stacks, text).
    py-spy writes its output when it gets SIGINT/SIGTERM or when the coordinator exits."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return Proc(
        "py-spy",
        ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--nonblocking",
         "--output", str(out_dir.resolve() / f"{name}.coordinator.txt")],
        root / "logs",
    )


def one_builder_spec(command: list[str] | str, workers: int, builder: str = "quick") -> ClusterSpec:
    names = [f"w{i}" for i in range(workers)]
    return ClusterSpec(
        workers=[(n, f"secret-{n}", 1) for n in names],
        builders=[BuilderSpec(builder, names, command)],
    )


def pct(values: list[float], q: float) -> float:
    """Percentile with linear interpolation (q in 0..100)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def submit_one(cl: Cluster, i: int) -> int:
    resp = await cl.changes.SubmitChanges(changes_pb2.SubmitChangesRequest(changes=[change(i)]), timeout=60)
    return int(resp.change_ids[0])


# -- 1. latency ------------------------------------------------------------------------------


WARMUP = 3


async def latency(opts: Options) -> ScenarioResult:
    res = ScenarioResult("latency")
    spec = one_builder_spec(["true"], 1)
    async with cluster("latency", opts, spec, spec.workers) as cl:
        tap = EventTap(cl.channel)
        tap.keep_all = True
        tap.start()
        try:
            samples: list[float] = []
            submits: list[tuple[int, float]] = []  # (change id, wall clock at submit)
            total = WARMUP + opts.latency_samples
            for i in range(total):
                t0 = time.perf_counter()
                wall0 = time.time()
                cid = await submit_one(cl, i)
                if i >= WARMUP:
                    submits.append((cid, wall0))
                def finished(cid: int = cid) -> bool:
                    return tap.change_bs.get(cid, -1) in tap.bs_finished

                await tap.wait(finished, 30, f"the buildset of change {cid} to finish")
                t1 = tap.bs_finished[tap.change_bs[cid]]
                if i >= WARMUP:
                    samples.append((t1 - t0) * 1000)
            bad = [ev for _, ev in tap.builds_finished if ev.result != common_pb2.SUCCESS]
        finally:
            await tap.close()
    res.values["p50 submit→finished"] = statistics.median(samples)
    res.values["p95 submit→finished"] = pct(samples, 95)
    res.notes.append(
        f"latency: {len(samples)} samples after {WARMUP} warm-up; min {min(samples):.1f} ms, "
        f"max {max(samples):.1f} ms"
    )
    breakdown = latency_breakdown(submits, tap)
    if breakdown:
        res.notes.append("latency: median ms per phase (event times, coordinator clock): " + ", ".join(
            f"{name} {ms:.1f}" for name, ms in breakdown))
    if bad:
        res.notes.append(f"latency: WARNING: {len(bad)} build(s) did not succeed")
    return res


PHASES = ["change.added", "buildset.added", "build.started", "step.started", "step.finished",
          "build.finished", "buildset.finished"]


def latency_breakdown(submits: list[tuple[int, float]], tap: EventTap) -> list[tuple[str, float]]:
    """Median time between consecutive milestones of each sample's build, from the submit call to
    the client receiving buildset.finished: where the latency goes."""
    def ts(ev: status_pb2.Event) -> float:
        return ev.at.seconds + ev.at.nanos / 1e9

    by_change: dict[int, float] = {}
    by_bs: dict[tuple[str, int], float] = {}
    received: dict[int, float] = {}
    for wall, ev in tap.events:
        if ev.kind == "change.added":
            by_change[int(json.loads(ev.details_json or "{}").get("change_id", 0))] = ts(ev)
        else:
            by_bs.setdefault((ev.kind, ev.buildset_id), ts(ev))
            if ev.kind == "buildset.finished":
                received[ev.buildset_id] = wall
    gaps: dict[str, list[float]] = {}
    for cid, wall0 in submits:
        bs = tap.change_bs.get(cid)
        if bs is None or cid not in by_change or bs not in received:
            continue
        points = [("submit", wall0), ("change.added", by_change[cid])]
        points += [(k, by_bs[(k, bs)]) for k in PHASES[1:] if (k, bs) in by_bs]
        points.append(("client", received[bs]))
        for (_, a), (name, b) in itertools.pairwise(points):
            gaps.setdefault(f"→{name}", []).append((b - a) * 1000)
    return [(name, statistics.median(v)) for name, v in gaps.items()]


# -- 2. throughput ---------------------------------------------------------------------------


async def throughput(opts: Options) -> ScenarioResult:
    res = ScenarioResult("throughput")
    n = opts.throughput_builds
    spec = one_builder_spec(["true"], opts.throughput_workers)
    async with cluster("throughput", opts, spec, spec.workers) as cl:
        tap = EventTap(cl.channel, ["build.finished"])  # only what is measured: keep the stream light
        tap.start()
        try:
            # Warm up every worker once (first command spawn, first DB writes), not measured.
            await asyncio.gather(*(submit_one(cl, 1_000_000 + k) for k in range(opts.throughput_workers)))
            await tap.wait(lambda: len(tap.builds_finished) >= opts.throughput_workers, 60, "warm-up builds")
            await asyncio.sleep(0.5)
            base = len(tap.builds_finished)
            cpu0 = cpu_seconds(cl.coord.ps)
            t0 = time.perf_counter()
            submit_done = 0.0
            for start in range(0, n, opts.submit_batch):
                await asyncio.gather(*(submit_one(cl, k) for k in range(start, min(n, start + opts.submit_batch))))
            submit_done = time.perf_counter()
            await tap.wait(lambda: len(tap.builds_finished) >= base + n, 30 + n * 0.5,
                           f"{n} builds to finish")
            t_last = tap.builds_finished[base + n - 1][0]
            cpu1 = cpu_seconds(cl.coord.ps)
            rss = rss_bytes(cl.coord.pid)
            measured = [ev for _, ev in tap.builds_finished[base:base + n]]
        finally:
            await tap.close()
    elapsed = t_last - t0
    bad = [ev for ev in measured if ev.result != common_pb2.SUCCESS]
    res.values["builds/s"] = n / elapsed
    res.values["coordinator CPU/build"] = (cpu1 - cpu0) * 1000 / n
    res.notes.append(
        f"throughput: {n} builds in {elapsed:.2f} s on {opts.throughput_workers} workers; all submitted after "
        f"{submit_done - t0:.2f} s (batches of {opts.submit_batch} concurrent single-change RPCs); "
        f"coordinator CPU {cpu1 - cpu0:.2f} s ({(cpu1 - cpu0) / elapsed * 100:.0f}% of a core), RSS "
        f"{rss / MiB:.0f} MiB after"
    )
    if bad:
        res.notes.append(f"throughput: WARNING: {len(bad)} of {n} builds did not succeed")
    return res


# -- 3. log ----------------------------------------------------------------------------------


def log_command(mb: int) -> list[str]:
    lines = mb * MiB // LINE
    return [
        "python3", "-c",
        "import sys; b=b'x'*1023+b'\\n'; w=sys.stdout.buffer.write; "
        f"[w(b) for _ in range({lines})]",
    ]


async def log_scenario(opts: Options) -> ScenarioResult:
    """`log_runs` builds of one step printing `log_mb` MB, one after the other; the median run counts."""
    res = ScenarioResult("log")
    mb = opts.log_mb
    spec = one_builder_spec(log_command(mb), 1, builder="log")
    runs: list[tuple[float, float]] = []  # (step seconds, submit→build.finished seconds)
    sizes: list[int] = []
    async with cluster("log", opts, spec, spec.workers) as cl:
        tap = EventTap(cl.channel, ["step.started", "step.finished", "build.finished"])
        tap.keep_all = True
        tap.start()
        try:
            await asyncio.sleep(0.5)
            rss_before = rss_bytes(cl.coord.pid)
            with PeakRss(cl.coord.pid, 0.05) as peak:
                for r in range(opts.log_runs):
                    t0 = time.perf_counter()
                    await submit_one(cl, r)
                    def done(r: int = r) -> bool:
                        return len(tap.builds_finished) > r

                    await tap.wait(done, 60 + mb * 10, "the log build to finish")
                    t1, fin = tap.builds_finished[r]
                    if fin.result != common_pb2.SUCCESS:
                        raise BenchError(f"log build {fin.build_number} ended {common_pb2.Result.Name(fin.result)}")
                    build = await cl.control.GetBuild(
                        control_pb2.GetBuildRequest(builder="log", number=fin.build_number), timeout=30
                    )
                    sizes.append(max((lg.size for st in build.steps for lg in st.logs if lg.name == "stdio"),
                                     default=0))
                    steps = {ev.kind: ev for _, ev in tap.events
                             if ev.build_number == fin.build_number and ev.kind in ("step.started", "step.finished")}
                    if len(steps) != 2:
                        raise BenchError(f"missing step events for log build {fin.build_number}")
                    a, b = steps["step.started"].at, steps["step.finished"].at
                    runs.append(((b.seconds + b.nanos / 1e9) - (a.seconds + a.nanos / 1e9), t1 - t0))
            hwm = proc_status_kib(cl.coord.pid, "VmHWM") * 1024
        finally:
            await tap.close()
    expected = mb * MiB
    if min(sizes) < expected:
        raise BenchError(f"stored log is {min(sizes)} bytes, expected at least {expected}: output was lost")
    rates = [mb / step_s for step_s, _ in runs]
    res.values["log throughput"] = statistics.median(rates)
    res.values["coordinator peak RSS"] = max(peak.peak, hwm) / MiB
    res.notes.append(
        f"log: {len(runs)} × {mb} MB, step.started→step.finished "
        f"{', '.join(f'{s:.2f}' for s, _ in runs)} s ({', '.join(f'{x:.0f}' for x in rates)} MB/s; median shown); "
        f"submit→build.finished {', '.join(f'{t:.2f}' for _, t in runs)} s; stored stdio logs ≥ {min(sizes):,} bytes; "
        f"RSS before {rss_before / MiB:.0f} MiB, peak {peak.peak / MiB:.0f} MiB ({peak.samples} samples), "
        f"VmHWM {hwm / MiB:.0f} MiB"
    )
    return res


# -- 4. idle workers -------------------------------------------------------------------------


def steady_rss(pid: int, samples: int = 5, interval: float = 0.2) -> int:
    vals = []
    for _ in range(samples):
        vals.append(rss_bytes(pid))
        time.sleep(interval)
    return int(statistics.median(vals))


async def idle_workers(opts: Options) -> ScenarioResult:
    res = ScenarioResult("idle_workers")
    n = opts.idle_workers
    spec = one_builder_spec(["true"], n, builder="idle")
    async with cluster("idle", opts, spec, []) as cl:
        await cl.connected_workers()  # warm the gRPC server path used below
        await asyncio.sleep(2.0)
        rss0 = await asyncio.to_thread(steady_rss, cl.coord.pid)
        fleet = LightWorkerFleet(cl.coord.address, [(name, secret) for name, secret, _ in spec.workers])
        try:
            t0 = time.perf_counter()
            await fleet.start(timeout=120)
            await cl.wait_workers(n, 60)
            t_conn = time.perf_counter() - t0
            # Settle: a full heartbeat round both ways (buffers, timers), then measure.
            settle = 3.0 if opts.quick else fleet.interval + 2.0
            await asyncio.sleep(settle)
            if fleet.alive < n:
                raise BenchError(f"only {fleet.alive}/{n} light workers still connected: {fleet.errors()[:3]}")
            rss_n = await asyncio.to_thread(steady_rss, cl.coord.pid)
            conns = await asyncio.to_thread(_established, cl.coord)
            connected = await cl.connected_workers()
        finally:
            await fleet.close()
    res.values["idle RSS (0 workers)"] = rss0 / MiB
    res.values["RSS per idle worker"] = (rss_n - rss0) / n / 1024
    res.notes.append(
        f"idle_workers: RSS {rss0 / MiB:.1f} MiB idle → {rss_n / MiB:.1f} MiB with {connected} connected light "
        f"workers ({conns} established TCP connections; all connected in {t_conn:.1f} s; measured {settle:g} s later)"
    )
    return res


def _established(coord: Coordinator) -> int:
    try:
        return sum(1 for c in coord.ps.net_connections(kind="tcp") if c.status == "ESTABLISHED")
    except Exception:  # noqa: BLE001 - diagnostics only
        return -1


async def reattach(opts: Options) -> ScenarioResult:
    from bench.reattach import reattach as run  # it builds on this module's helpers

    return await run(opts)


async def faults(opts: Options) -> ScenarioResult:
    from bench.faults import faults as run  # it builds on this module's helpers

    return await run(opts)


SCENARIO_FUNCS = {
    "latency": latency,
    "throughput": throughput,
    "log": log_scenario,
    "idle_workers": idle_workers,
    "subscribers": subscribers,
    "reattach": reattach,
    "faults": faults,
}
TIME_LIMITS = {
    "latency": 180, "throughput": 300, "log": 300, "idle_workers": 240, "subscribers": 600, "reattach": 300,
    "faults": 600,
}


async def run_scenario(name: str, opts: Options) -> ScenarioResult:
    t0 = time.perf_counter()
    try:
        res = await asyncio.wait_for(SCENARIO_FUNCS[name](opts), TIME_LIMITS[name])
    except TimeoutError:
        res = ScenarioResult(name, error=f"did not finish within {TIME_LIMITS[name]} s")
    except (BenchError, grpc.aio.AioRpcError, OSError) as exc:
        msg = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        res = ScenarioResult(name, error=f"{type(exc).__name__}: {msg}")
    res.seconds = time.perf_counter() - t0
    return res

