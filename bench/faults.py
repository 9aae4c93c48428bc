"""The `faults` scenario: the coordinator SIGKILLed at random moments while builds run.

4 worker agents (max_builds=2) and `fault_builds` builds (one per change, all submitted and
acknowledged first). Each build's step appends "REVISION start" to a shared file, prints for
about a second, and appends "REVISION end". While they run, the coordinator is SIGKILLed
`fault_kills` times at random moments (uniform 0.3–2 s apart) and started again at once on the
same port and database. Checked, and the run fails otherwise:
- every acknowledged change is stored and every buildset finishes;
- no step's side effect happens twice: each revision's "start" line appears at most once for a
  build that finished SUCCESS without a RETRY before it, and never twice in any case;
Reported: how many builds ended RETRY (re-run; only a build whose command had not reached the
worker can), how many commands re-attached, and the wall time.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import socket
import time
from pathlib import Path

import grpc

from bench.harness import BenchError, Coordinator, Proc, Workspace, start_worker, stop_all
from bench.metrics import ScenarioResult
from bench.scenarios import EventTap, Options, change, say
from protos.gantry.v1 import changes_pb2, changes_pb2_grpc, common_pb2, control_pb2, control_pb2_grpc

WORKERS = 4


def config(effects: Path) -> str:
    step = (
        f"echo %(prop:revision)s start >> {effects}; i=0; while [ $i -lt 10 ]; do echo tick $i; i=$((i+1)); "
        f"sleep 0.1; done; echo %(prop:revision)s end >> {effects}"
    )
    workers = ", ".join(f"Worker('w{i}', 'secret-w{i}', max_builds=2)" for i in range(WORKERS))
    names = [f"w{i}" for i in range(WORKERS)]
    return f"""from coordinator.config import *

config = MasterConfig(
    workers=[{workers}],
    builders=[Builder("effects", workers={names!r}, collapseRequests=False,
                      steps=[ShellCommand(name="run", command=Interpolate({step!r}))])],
    schedulers=[SingleBranchScheduler("sched", branch="main", tree_stable_timer=None, builders=["effects"])],
)
"""


async def faults(opts: Options) -> ScenarioResult:
    res = ScenarioResult("faults")
    n, kills = opts.fault_builds, opts.fault_kills
    with Workspace("faults", keep=opts.keep) as ws, socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        listen = ("--listen", f"127.0.0.1:{held.getsockname()[1]}")
        effects = ws.path / "effects"
        effects.touch()
        coord = _coordinator(ws.path, effects, listen)
        workers: list[Proc] = []
        try:
            address = await asyncio.to_thread(coord.wait_ready, 60)
            for i in range(WORKERS):
                workers.append(start_worker(ws.path, address, f"w{i}", f"secret-w{i}", 2))
            async with grpc.aio.insecure_channel(address) as channel:
                await _wait_workers(channel, WORKERS)
                stub = changes_pb2_grpc.ChangeServiceStub(channel)
                acked: list[int] = []
                for i in range(0, n, 20):
                    resp = await stub.SubmitChanges(
                        changes_pb2.SubmitChangesRequest(changes=[change(j) for j in range(i, min(n, i + 20))]),
                        timeout=60,
                    )
                    acked.extend(resp.change_ids)
            t0 = time.perf_counter()
            rng = random.Random(20)
            for k in range(kills):
                await asyncio.sleep(rng.uniform(0.3, 2.0))
                coord.proc.signal(signal.SIGKILL)
                await asyncio.to_thread(coord.proc.popen.wait, 30)
                coord = _coordinator(ws.path, effects, listen)
                await asyncio.to_thread(coord.wait_ready, 60)
                say(opts, f"SIGKILL {k + 1}/{kills} and restart")
            async with grpc.aio.insecure_channel(address) as channel:
                tap = EventTap(channel, ["buildset.finished", "build.finished"])
                tap.start()
                try:
                    await tap.wait(lambda: len(tap.bs_finished) >= n, 600, f"{n} buildsets to finish")
                finally:
                    await tap.close()
                wall = time.perf_counter() - t0
                results = collections.Counter(common_pb2.Result.Name(ev.result) for _, ev in tap.builds_finished)
                control = control_pb2_grpc.ControlServiceStub(channel)
                listed = await control.ListBuilds(control_pb2.ListBuildsRequest(builder="effects", limit=10 * n))
                if len(acked) != n:
                    raise BenchError(f"{len(acked)} of {n} changes acknowledged")
        finally:
            await asyncio.to_thread(stop_all, [*workers, coord.proc])
        lines = effects.read_text().split()
        starts = collections.Counter(lines[i] for i in range(0, len(lines) - 1, 2) if lines[i + 1] == "start")
        twice = sorted(rev for rev, c in starts.items() if c > 1)
        retried = results.get("RETRY", 0)
        again = sum(
            p.stderr_path.read_text(errors="replace").count("re-attached command") for p in workers
        )
        res.values["builds re-run after a kill"] = float(retried)
        res.values["side effects twice"] = float(len(twice))
        res.notes.append(
            f"faults: {n} builds on {WORKERS} workers (2 each), {kills} coordinator SIGKILLs+restarts; all {n} "
            f"changes acknowledged and every buildset finished in {wall:.1f} s; build results {dict(results)} "
            f"({len(listed.builds)} builds); {again} command(s) re-attached; side effects twice: {len(twice)}"
        )
        if twice:
            raise BenchError(f"side effect twice for {twice[:5]}")
        if len(starts) != n:
            raise BenchError(f"{len(starts)} of {n} builds left their side effect")
    return res


def _coordinator(root: Path, effects: Path, listen: tuple[str, ...]) -> Coordinator:
    return Coordinator(root, None, listen, config=config(effects))


async def _wait_workers(channel: grpc.aio.Channel, n: int) -> None:
    control = control_pb2_grpc.ControlServiceStub(channel)
    deadline = time.monotonic() + 60
    while True:
        resp = await control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=30)
        if sum(1 for w in resp.workers if w.connected) >= n:
            return
        if time.monotonic() > deadline:
            raise BenchError("workers did not connect")
        await asyncio.sleep(0.1)
