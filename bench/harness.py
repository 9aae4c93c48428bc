"""Process management for the benchmarks: temp dirs, a coordinator, worker agents, teardown.

Everything runs on loopback in a fresh temporary directory. Processes are started in their own
session (process group), their output goes to log files in the temp dir (never to a pipe nobody
reads), readiness is detected by parsing the coordinator's stdout, and teardown is SIGTERM, a
bounded wait, then SIGKILL of the process group.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_RE = re.compile(r"Gantry coordinator listening on (\S+):(\d+)")


class BenchError(Exception):
    """A scenario could not run (a process died, a readiness wait timed out, a check failed)."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


class Workspace:
    """A temporary directory for one scenario; removed on exit unless `keep`."""

    def __init__(self, prefix: str, keep: bool = False) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"gantry-bench-{prefix}-"))
        self.keep = keep

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.keep:
            print(f"  (kept {self.path})", file=sys.stderr)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


class Proc:
    """A child process in its own process group, stdout/stderr captured to files.

    If `ready_re` is given, stdout is read by a thread (copied to the log file) and
    `wait_ready` returns the first match.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        logdir: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        ready_re: re.Pattern[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / f"{name}.out"
        self.stderr_path = logdir / f"{name}.err"
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self._ready = threading.Event()
        self._match: re.Match[str] | None = None
        self._out = None
        self._reader: threading.Thread | None = None
        if ready_re is not None:
            stdout: int | object = subprocess.PIPE
        else:
            self._out = open(self.stdout_path, "wb")  # noqa: SIM115 - closed in stop()
            stdout = self._out
        self.popen = subprocess.Popen(
            self.argv,
            cwd=str(cwd or REPO_ROOT),
            env=env if env is not None else child_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,  # type: ignore[arg-type]
            stderr=self._err,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        if ready_re is not None:
            self._reader = threading.Thread(
                target=self._read_stdout, args=(ready_re,), name=f"{name}-stdout", daemon=True
            )
            self._reader.start()

    def _read_stdout(self, ready_re: re.Pattern[str]) -> None:
        assert self.popen.stdout is not None
        with open(self.stdout_path, "wb") as copy:
            for raw in self.popen.stdout:
                copy.write(raw)
                copy.flush()
                if not self._ready.is_set():
                    m = ready_re.search(raw.decode("utf-8", "replace"))
                    if m:
                        self._match = m
                        self._ready.set()
        self._ready.set()  # EOF: wake the waiter, which sees no match

    def wait_ready(self, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.popen.poll() is not None:
                self._ready.wait(1.0)
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} not ready within {timeout:g}s{self.tail()}")
        if self._match is None:
            raise BenchError(f"{self.name} exited (rc={self.popen.poll()}) before it was ready{self.tail()}")
        return self._match

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(text)) if text else ""

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole process group."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group: also stray children
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self._reader is not None:
            self._reader.join(2)
        for f in (self._out, self._err):
            if f is not None:
                f.close()


def stop_all(procs: Sequence[Proc], timeout: float = 10.0) -> None:
    """Stop several processes in parallel (SIGTERM to all first, then wait, then kill)."""
    for p in procs:
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.stop(max(0.1, deadline - time.monotonic()))


# -- configuration ---------------------------------------------------------------------------


@dataclass
class BuilderSpec:
    name: str
    workers: list[str]
    command: list[str] | str


@dataclass
class ClusterSpec:
    workers: list[tuple[str, str, int]]  # (name, secret, max_builds)
    builders: list[BuilderSpec]


def master_cfg(spec: ClusterSpec) -> str:
    lines = [
        "from coordinator.config import *",
        "",
        "config = MasterConfig(",
        "    workers=[",
    ]
    for name, secret, max_builds in spec.workers:
        lines.append(f"        Worker({name!r}, {secret!r}, max_builds={max_builds}),")
    lines.append("    ],")
    lines.append("    builders=[")
    for b in spec.builders:
        lines.append(
            f"        Builder({b.name!r}, workers={b.workers!r}, collapseRequests=False, "
            f"steps=[ShellCommand(name='run', command={b.command!r})]),"
        )
    names = [b.name for b in spec.builders]
    lines += [
        "    ],",
        "    schedulers=[",
        f"        SingleBranchScheduler('sched', branch='main', tree_stable_timer=None, builders={names!r}),",
        f"        ForceScheduler('force', builders={names!r}),",
        "    ],",
        ")",
        "",
    ]
    return "\n".join(lines)


class Coordinator:
    """A coordinator process on 127.0.0.1:<ephemeral> with SQLite in `root/data`."""

    def __init__(self, root: Path, spec: ClusterSpec | None, args: Sequence[str] = (), config: str = "") -> None:
        self.root = root
        self.config_path = root / "master.py"
        self.config_path.write_text(config or master_cfg(spec or ClusterSpec([], [])))
        self.data_dir = root / "data"
        self.proc = Proc(
            "coordinator",
            [sys.executable, "-m", "coordinator", "start", "--config", str(self.config_path),
             "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0", *args],
            root / "logs",
            ready_re=READY_RE,
        )
        self.address = ""
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 60.0) -> str:
        m = self.proc.wait_ready(timeout)
        self.address = f"{m.group(1)}:{m.group(2)}"
        return self.address

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.stop()


def start_worker(root: Path, address: str, name: str, secret: str, max_builds: int = 1) -> Proc:
    wdir = root / "workers" / name
    wdir.mkdir(parents=True, exist_ok=True)
    secret_file = wdir / "secret"
    secret_file.write_text(secret + "\n")
    return Proc(
        f"worker-{name}",
        [sys.executable, "-m", "worker_agent", "start", "--coordinator", address, "--name", name,
         "--secret-file", str(secret_file), "--basedir", str(wdir / "base"),
         "--max-builds", str(max_builds)],
        root / "logs",
    )


# -- memory/CPU measurement -----------------------------------------------------------------


def proc_status_kib(pid: int, field_name: str) -> int:
    """A `VmRSS`/`VmHWM`... line of /proc/PID/status, in KiB (0 when unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    kib = proc_status_kib(pid, "VmRSS")
    if kib:
        return kib * 1024
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(ps: psutil.Process) -> float:
    t = ps.cpu_times()
    return float(t.user + t.system)


class PeakRss:
    """Polls a process's RSS every `interval` seconds in a thread; `peak` is the maximum seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
                self.samples += 1
            except (psutil.Error, OSError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
