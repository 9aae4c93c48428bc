"""Buildbot's side of the comparison: the same scenarios on a real Buildbot master and workers.

Given the Python interpreter of a venv where ``buildbot``, ``buildbot-worker`` and
``buildbot-www`` are installed (``pip install buildbot buildbot-worker buildbot-www``), each
scenario creates a fresh master (SQLite) and worker(s) in a temporary directory, with the
equivalent configuration:

- one-step ``true`` builder, SingleBranchScheduler with ``treeStableTimer=None`` (one build per
  change, at once), the same workers (``max_builds=1``);
- changes come in through the ``base`` change hook of the web server (``POST /change_hook/base``,
  which answers once the change is stored — the counterpart of ``SubmitChanges``);
  ``collapseRequests`` is off (on both sides: both collapse by default) so that every change
  gets its own build;
- completion is pushed, not polled: a small service in ``master.cfg`` consumes Buildbot's
  message queue (buildsets complete, builds finished, steps started/finished) and sends each
  event as a UDP datagram to the benchmark, which timestamps its arrival — the counterpart of
  Gantry's status stream. Polling the REST API instead distorts what it measures: the master is
  single-threaded and each poll costs it milliseconds (measured p50 latency: 329 ms pushed,
  458 ms polling every 50 ms, 568 ms every 10 ms, 961 ms every 2 ms). The REST API is still used
  for readiness (connected workers) and for the final checks (build results, stored log lines).

Nothing here is imported by the Gantry scenarios, and Gantry never needs Buildbot: when the
interpreter lacks Buildbot, :func:`run` reports "buildbot not available" and measures nothing.
``idle_workers`` is not run for Buildbot (it would take 500 buildbot-worker processes); the
table keeps the issue's reference numbers for it.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.harness import (
    BenchError,
    PeakRss,
    Proc,
    Workspace,
    cpu_seconds,
    proc_status_kib,
    rss_bytes,
    stop_all,
)
from bench.metrics import ScenarioResult

MiB = 1024 * 1024
WARMUP = 3
SUPPORTED = ("latency", "throughput", "log")

BUILDBOT_MAIN = "import sys; from buildbot.scripts.runner import run; sys.argv[0] = 'buildbot'; sys.exit(run())"
WORKER_MAIN = (
    "import sys; from buildbot_worker.scripts.runner import run; sys.argv[0] = 'buildbot-worker'; sys.exit(run())"
)

MASTER_CFG = """\
import json
import socket
import time

from twisted.internet import defer

from buildbot.plugins import schedulers, steps, util, worker
from buildbot.util import service


class BenchProbe(service.BuildbotService):
    \"\"\"Pushes completion events to the benchmark over UDP (no REST polling load).\"\"\"

    KEYS = [('buildsets', None, 'complete'), ('builds', None, 'finished'),
            ('steps', None, 'started'), ('steps', None, 'finished')]

    def checkConfig(self, port):
        pass

    def reconfigService(self, port):
        self.port = port

    @defer.inlineCallbacks
    def startService(self):
        yield super().startService()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.consumers = []
        for key in self.KEYS:
            consumer = yield self.master.mq.startConsuming(self.on_message, key)
            self.consumers.append(consumer)

    def stopService(self):
        for consumer in self.consumers:
            consumer.stopConsuming()
        return super().stopService()

    def on_message(self, key, msg):
        out = {{'kind': key[0] + '.' + key[-1], 't': time.time()}}
        for field in ('bsid', 'buildid', 'stepid', 'number', 'name', 'results'):
            if field in msg:
                out[field] = msg[field]
        self.sock.sendto(json.dumps(out).encode(), ('127.0.0.1', self.port))


c = BuildmasterConfig = {{}}
c['buildbotNetUsageData'] = None
c['title'] = 'gantry-bench'
c['buildbotURL'] = 'http://127.0.0.1:{www_port}/'
c['db'] = {{'db_url': 'sqlite:///state.sqlite'}}
c['protocols'] = {{'pb': {{'port': 'tcp:{pb_port}:interface=127.0.0.1'}}}}
c['workers'] = [worker.Worker(name, 'pass-' + name, max_builds=1) for name in {workers!r}]
c['change_source'] = []
# One build per change, as in the Gantry run (both collapse compatible pending requests by default).
c['collapseRequests'] = False
c['schedulers'] = [
    schedulers.SingleBranchScheduler(
        name='sched', change_filter=util.ChangeFilter(branch='main'), treeStableTimer=None,
        builderNames=[{builder!r}]),
    schedulers.ForceScheduler(name='force', builderNames=[{builder!r}]),
]
factory = util.BuildFactory()
factory.addStep(steps.ShellCommand(name='run', command={command!r}))
c['builders'] = [util.BuilderConfig(name={builder!r}, workernames={workers!r}, factory=factory)]
c['www'] = {{
    'port': 'tcp:{www_port}:interface=127.0.0.1',
    'change_hook_dialects': {{'base': {{}}}},
    'plugins': {{}},
}}
c['services'] = [BenchProbe(port={probe_port}, name='bench-probe')]
"""


def check(python: str) -> str:
    """'' when `python` can run Buildbot, else why not."""
    if not Path(python).exists():
        return f"{python} does not exist"
    try:
        out = subprocess.run(
            [python, "-c", "import buildbot, buildbot_worker, buildbot_www; print(buildbot.version)"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"buildbot, buildbot-worker or buildbot-www not importable in {python} ({last})"
    return ""


def buildbot_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import buildbot, buildbot_worker; print(buildbot.version, buildbot_worker.version)"],
        capture_output=True, text=True, timeout=60,
    )
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Http:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, timeout: float = 30) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post_form(self, path: str, fields: dict[str, str], timeout: float = 60) -> bytes:
        data = urllib.parse.urlencode(fields).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return bytes(r.read())


class Probe:
    """Receives the master's BenchProbe datagrams; records (arrival perf_counter, message)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * MiB)
        self.port = int(self.sock.getsockname()[1])
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="bb-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            now = time.perf_counter()
            with self._cond:
                self.messages.append((now, json.loads(data)))
                self._cond.notify_all()

    def of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        with self._cond:
            return [(t, m) for t, m in self.messages if m["kind"] == kind]

    def wait(self, kind: str, count: int, timeout: float, cl: BBCluster) -> list[tuple[float, dict[str, Any]]]:
        """Wait until `count` messages of `kind` arrived; returns them (arrival order)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [(t, m) for t, m in self.messages if m["kind"] == kind]
                if len(got) >= count:
                    return got
                cl.check_alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"buildbot: timed out after {timeout:g}s waiting for {count} {kind}")
                self._cond.wait(min(left, 1.0))

    def close(self) -> None:
        self.sock.close()


@dataclass
class BBCluster:
    root: Path
    master: Proc
    workers: list[Proc]
    http: Http
    probe: Probe

    def submit(self, i: int) -> None:
        """One change through the base change hook; returns once Buildbot stored it."""
        self.http.post_form("/change_hook/base", {
            "author": "Bench <bench@example.org>", "comments": f"bench change {i}",
            "files": json.dumps(["src/main.c"]), "revision": f"{i:040x}", "branch": "main",
            "repository": "https://example.org/bench.git", "project": "bench",
        })

    def builds(self) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode([("complete", "true"), ("field", "complete"), ("field", "buildid"),
                                    ("field", "results"), ("field", "number")])
        return list(self.http.get(f"/api/v2/builds?{q}")["builds"])

    def check_alive(self) -> None:
        if not self.master.alive():
            raise BenchError(f"buildbot master died{self.master.tail()}")


def _start(ws: Workspace, python: str, workers: list[str], builder: str, command: list[str] | str,
           verbose: bool) -> BBCluster:
    root = ws.path
    www_port, pb_port = free_port(), free_port()
    mdir = root / "master"
    out = subprocess.run(
        [python, "-c", BUILDBOT_MAIN, "create-master", "--quiet", str(mdir)],
        capture_output=True, text=True, timeout=180,
    )
    if out.returncode != 0:
        raise BenchError(f"buildbot create-master failed: {(out.stdout + out.stderr).strip()[-500:]}")
    probe = Probe()
    (mdir / "master.cfg").write_text(MASTER_CFG.format(
        www_port=www_port, pb_port=pb_port, workers=workers, builder=builder, command=command,
        probe_port=probe.port,
    ))
    master = Proc("bb-master", [python, "-c", BUILDBOT_MAIN, "start", "--nodaemon", str(mdir)],
                  root / "logs", cwd=mdir)
    procs = [master]
    try:
        for name in workers:
            wdir = root / "workers" / name
            wdir.parent.mkdir(parents=True, exist_ok=True)
            out = subprocess.run(
                [python, "-c", WORKER_MAIN, "create-worker", "--quiet", "--umask=0o22", str(wdir),
                 f"127.0.0.1:{pb_port}", name, "pass-" + name],
                capture_output=True, text=True, timeout=120,
            )
            if out.returncode != 0:
                raise BenchError(f"buildbot-worker create-worker failed: {(out.stdout + out.stderr).strip()[-500:]}")
            procs.append(Proc(f"bb-{name}", [python, "-c", WORKER_MAIN, "start", "--nodaemon", str(wdir)],
                              root / "logs", cwd=wdir))
        cl = BBCluster(root, master, procs[1:], Http(www_port), probe)
        deadline = time.monotonic() + 120
        while True:
            cl.check_alive()
            try:
                ws_ = cl.http.get("/api/v2/workers", timeout=5)["workers"]
                if sum(1 for w in ws_ if w.get("connected_to")) >= len(workers):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                twistd = mdir / "twistd.log"
                tail = twistd.read_text(errors="replace")[-1500:] if twistd.exists() else ""
                raise BenchError(f"buildbot master/workers not ready within 120 s\n{tail}")
            time.sleep(0.2)
        if verbose:
            print(f"  buildbot master pid {master.pid}, {len(workers)} worker(s) connected", file=sys.stderr)
        return cl
    except BaseException:
        stop_all(procs)
        probe.close()
        raise


def _teardown(cl: BBCluster | None) -> None:
    if cl is not None:
        stop_all([*cl.workers, cl.master], timeout=15)
        cl.probe.close()


# -- scenarios -------------------------------------------------------------------------------


def latency(python: str, opts: Any) -> ScenarioResult:
    res = ScenarioResult("latency")
    with Workspace("bb-latency", keep=opts.keep) as ws:
        cl = None
        try:
            cl = _start(ws, python, ["w0"], "quick", ["true"], opts.verbose)
            samples: list[float] = []
            for i in range(WARMUP + opts.latency_samples):
                t0 = time.perf_counter()
                cl.submit(i)
                t1 = cl.probe.wait("buildsets.complete", i + 1, 60, cl)[i][0]
                if i >= WARMUP:
                    samples.append((t1 - t0) * 1000)
            bad = [b for b in cl.builds() if b["results"] != 0]
        finally:
            _teardown(cl)
    res.values["p50 submit→finished"] = statistics.median(samples)
    res.values["p95 submit→finished"] = statistics.quantiles(samples, n=100, method="inclusive")[94]
    res.notes.append(
        f"latency: {len(samples)} samples after {WARMUP} warm-up (change hook POST → buildset complete, "
        f"pushed by an mq consumer in master.cfg); min {min(samples):.0f} ms, max {max(samples):.0f} ms"
    )
    if bad:
        res.notes.append(f"latency: WARNING: {len(bad)} build(s) did not succeed")
    return res


def throughput(python: str, opts: Any) -> ScenarioResult:
    res = ScenarioResult("throughput")
    n, nw = opts.throughput_builds, opts.throughput_workers
    names = [f"w{i}" for i in range(nw)]
    with Workspace("bb-throughput", keep=opts.keep) as ws:
        cl = None
        try:
            cl = _start(ws, python, names, "quick", ["true"], opts.verbose)
            with concurrent.futures.ThreadPoolExecutor(opts.submit_batch) as pool:
                list(pool.map(cl.submit, range(1_000_000, 1_000_000 + nw)))
                cl.probe.wait("builds.finished", nw, 120, cl)
                time.sleep(0.5)
                base = len(cl.probe.of("builds.finished"))
                ps = psutil.Process(cl.master.pid)
                cpu0 = cpu_seconds(ps)
                t0 = time.perf_counter()
                for start in range(0, n, opts.submit_batch):
                    list(pool.map(cl.submit, range(start, min(n, start + opts.submit_batch))))
                submitted = time.perf_counter() - t0
            t_last = cl.probe.wait("builds.finished", base + n, 60 + n * 2, cl)[base + n - 1][0]
            cpu1 = cpu_seconds(ps)
            rss = rss_bytes(cl.master.pid)
            done = cl.builds()
            bad = [b for b in done if b["results"] != 0]
        finally:
            _teardown(cl)
    elapsed = t_last - t0
    res.values["builds/s"] = n / elapsed
    res.values["coordinator CPU/build"] = (cpu1 - cpu0) * 1000 / n
    res.notes.append(
        f"throughput: {n} builds in {elapsed:.1f} s on {nw} workers; all submitted after {submitted:.1f} s; "
        f"master CPU {cpu1 - cpu0:.1f} s, RSS {rss / MiB:.0f} MiB after; REST shows {len(done)} complete builds"
    )
    if bad:
        res.notes.append(f"throughput: WARNING: {len(bad)} build(s) did not succeed")
    return res


def log_scenario(python: str, opts: Any) -> ScenarioResult:
    from bench.scenarios import LINE, log_command

    res = ScenarioResult("log")
    mb = opts.log_mb
    runs: list[tuple[float, float]] = []  # (step seconds, submit→build finished seconds)
    line_counts: list[int] = []
    with Workspace("bb-log", keep=opts.keep) as ws:
        cl = None
        try:
            cl = _start(ws, python, ["w0"], "log", log_command(mb), opts.verbose)
            time.sleep(0.5)
            with PeakRss(cl.master.pid, 0.05) as peak:
                for r in range(opts.log_runs):
                    t0 = time.perf_counter()
                    cl.submit(r)
                    t1, build = cl.probe.wait("builds.finished", r + 1, 60 + mb * 20, cl)[r]
                    started = [m for _, m in cl.probe.of("steps.started")
                               if m.get("name") == "run" and m.get("buildid") == build["buildid"]]
                    finished = [m for _, m in cl.probe.of("steps.finished")
                                if m.get("name") == "run" and m.get("buildid") == build["buildid"]]
                    if not started or not finished:
                        raise BenchError("buildbot: no step started/finished messages for the log step")
                    step = finished[0]
                    if step.get("results") != 0:
                        raise BenchError(f"buildbot: the log step ended with results={step.get('results')}")
                    logs = cl.http.get(f"/api/v2/steps/{step['stepid']}/logs")["logs"]
                    line_counts.append(max((lg.get("num_lines", 0) for lg in logs), default=0))
                    runs.append((finished[0]["t"] - started[0]["t"], t1 - t0))
            hwm = proc_status_kib(cl.master.pid, "VmHWM") * 1024
        finally:
            _teardown(cl)
    expected_lines = mb * MiB // LINE
    if min(line_counts) < expected_lines:
        raise BenchError(f"buildbot: a stored log has {min(line_counts)} lines, expected ≥ {expected_lines}")
    rates = [mb / step_s for step_s, _ in runs]
    res.values["log throughput"] = statistics.median(rates)
    res.values["coordinator peak RSS"] = max(peak.peak, hwm) / MiB
    res.notes.append(
        f"log: {len(runs)} × {mb} MB, step started→finished (master clock) "
        f"{', '.join(f'{s:.2f}' for s, _ in runs)} s ({', '.join(f'{x:.1f}' for x in rates)} MB/s; median shown); "
        f"submit→build finished {', '.join(f'{t:.2f}' for _, t in runs)} s; stored logs ≥ {min(line_counts):,} "
        f"lines; master peak RSS {peak.peak / MiB:.0f} MiB, VmHWM {hwm / MiB:.0f} MiB"
    )
    return res


FUNCS = {"latency": latency, "throughput": throughput, "log": log_scenario}


def availability(python: str) -> tuple[bool, str]:
    """(usable, a status line for the report)."""
    why = check(python)
    if why:
        return False, f"buildbot not available: {why}"
    return True, (f"Buildbot {buildbot_version(python)} (buildbot, buildbot-worker) from {python}, measured "
                  "on this machine right after Gantry's run of the same scenario")


def run_one(python: str, name: str, opts: Any) -> ScenarioResult:
    """Buildbot's side of one scenario (call :func:`availability` first)."""
    if name not in FUNCS:
        return ScenarioResult(name, notes=[
            f"{name}: not run for Buildbot (it would take hundreds of buildbot-worker processes); "
            "the issue's reference numbers are shown"])
    t0 = time.perf_counter()
    try:
        res = FUNCS[name](python, opts)
    except (BenchError, OSError, urllib.error.URLError, KeyError, subprocess.SubprocessError) as exc:
        res = ScenarioResult(name, error=f"{type(exc).__name__}: {exc}")
    res.seconds = time.perf_counter() - t0
    return res


def run(python: str, names: list[str], opts: Any) -> tuple[dict[str, ScenarioResult] | None, str]:
    """Run Buildbot's side of `names`; returns (results or None, a status line for the report)."""
    ok, status = availability(python)
    if not ok:
        return None, status
    return {name: run_one(python, name, opts) for name in names}, status
