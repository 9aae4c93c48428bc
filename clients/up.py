"""`gantry up`: a newcomer's one command. It prepares a data directory with a sample
configuration, starts a coordinator and a local worker as real subprocesses, runs a sample
build live in the terminal, then keeps serving until Ctrl-C (worker stopped first).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

import clients
from clients.client import GantryClient
from clients.errors import CoordinatorUnavailable, GantryError, LocalError
from clients.live import BuildFollower, EventPump, Target
from clients.live_view import make_display

SAMPLE_CONFIG = '''\
"""Sample Gantry configuration written by `gantry up`. Edit it and run `gantry checkconfig`."""
from pathlib import Path

from coordinator.config import (
    Builder, ForceScheduler, MasterConfig, ShellCommand, SingleBranchScheduler, Worker,
)

HERE = Path(__file__).parent

config = MasterConfig(
    workers=[Worker("local-worker", secret=(HERE / "worker.secret").read_text().strip(), max_builds=2)],
    builders=[
        Builder(
            "sample",
            workers=["local-worker"],
            steps=[
                ShellCommand(name="hello", command=["echo", "Hello from Gantry"]),
                ShellCommand(name="environment", command="uname -a && python3 --version"),
                ShellCommand(name="count", command="for i in 1 2 3; do echo step $i; sleep 0.3; done"),
            ],
        ),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["sample"]),
        ForceScheduler("force", builders=["sample"]),
    ],
)
'''
T = TypeVar("T")
WORKER_NAME = "local-worker"
STARTUP_TIMEOUT = 30.0
STOP_GRACE = 10.0
SCHEDULER_TIMEOUT = 30.0
_PROJECT_ROOT = str(Path(clients.__file__).resolve().parent.parent)


def prepare_data_dir(data_dir: Path) -> Path:
    """Create DATA with a sample master.py and a worker.secret (0600); keep what exists.
    Returns the directory's absolute path."""
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "worker").mkdir(exist_ok=True)
        config = data_dir / "master.py"
        if not config.exists():
            config.write_text(SAMPLE_CONFIG, encoding="utf-8")
        secret = data_dir / "worker.secret"
        if not secret.exists():
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
    except OSError as err:
        raise LocalError(f"cannot prepare the data directory {data_dir}: {err}") from None
    return data_dir


def split_address(address: str) -> tuple[str, int]:
    """"HOST:PORT" or "[v6]:PORT" -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise LocalError(f"--listen expects HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def client_address(listen: str) -> str:
    """Where a local client reaches a coordinator listening on `listen`."""
    host, port = split_address(listen)
    if host in ("0.0.0.0", "::"):
        return f"127.0.0.1:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port_free(listen: str) -> None:
    # gRPC binds with SO_REUSEPORT, so a second coordinator would silently share the port.
    host, port = split_address(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise LocalError(f"cannot listen on {listen}: {err.strerror}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise LocalError(
                    f"{listen} is already in use (is another coordinator running? "
                    "choose another address with --listen HOST:PORT)"
                ) from None
            raise LocalError(f"cannot listen on {listen}: {err.strerror}") from None


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in tail)


class LocalProcess:
    """A child process with its output in a log file, in its own session so that the
    terminal's Ctrl-C reaches only `gantry up`, which stops children in order. It gets
    `stop_signal` when `gantry up` stops it, and also when `gantry up` dies any other way
    (through `clients.lifeline`), so it never outlives `gantry up`."""

    def __init__(self, name: str, log: Path, proc: asyncio.subprocess.Process, stop_signal: signal.Signals) -> None:
        self.name, self.log, self.proc, self.stop_signal = name, log, proc, stop_signal

    @classmethod
    async def start(
        cls, name: str, argv: list[str], log: Path, stop_signal: signal.Signals = signal.SIGTERM
    ) -> LocalProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Children must import this same copy of Gantry, wherever they are started from.
        paths = (_PROJECT_ROOT, env.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        try:
            with log.open("ab") as out:
                out.write(f"--- gantry up: starting the {name} at {time.ctime()} ---\n".encode())
                out.flush()
                lifeline = [sys.executable, "-m", "clients.lifeline", str(os.getpid()), stop_signal.name]
                proc = await asyncio.create_subprocess_exec(
                    *lifeline, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                    stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
                )
        except OSError as err:
            raise LocalError(f"cannot start the {name}: {err}") from None
        return cls(name, log, proc, stop_signal)

    def failure(self, what: str) -> LocalError:
        tail = log_tail(self.log)
        return LocalError(f"the {self.name} {what}; see {self.log}" + (f":\n{tail}" if tail else ""))

    async def stop(self) -> None:
        """`stop_signal`, then SIGKILL after STOP_GRACE seconds; idempotent."""
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(self.stop_signal)
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def _race_exit(work: asyncio.Future[T], processes: list[LocalProcess], what: str) -> T:
    """Await `work`, failing with a process's log if one of `processes` exits first."""
    exits = {asyncio.ensure_future(p.proc.wait()): p for p in processes}
    pending: set[asyncio.Future[Any]] = {work, *exits}
    try:
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            process = exits[next(task for task in exits if task in done)]
            raise process.failure(f"exited with code {process.proc.returncode} {what}")
        return work.result()
    finally:
        for task in pending:
            task.cancel()


async def _wait_worker(client: GantryClient, worker: LocalProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if worker.proc.returncode is not None:
            raise worker.failure(f"exited with code {worker.proc.returncode} before connecting")
        if any(w.name == WORKER_NAME and w.connected for w in await client.list_workers()):
            return
        await asyncio.sleep(0.2)
    raise worker.failure(f"did not connect within {STARTUP_TIMEOUT:g}s")


async def _sample_build(client: GantryClient, console: Console) -> None:
    pump = EventPump(client)
    await pump.start()  # before submitting: the scheduler reacts at once
    try:
        [change_id] = await client.submit_changes([{
            "author": "Gantry Sample <sample@gantry.invalid>",
            "repository": "sample",
            "branch": "main",
            "revision": secrets.token_hex(20),
            "comments": "Sample change from gantry up",
            "files": ["README.md"],
        }])
        console.print(f"Submitted sample change {change_id}")
        display = make_display(console, False, "waiting for the scheduler to start a build")
        with display:
            follower = BuildFollower(client, pump, display, Target(change_id=change_id))
            task = asyncio.create_task(follower.run())
            try:
                await asyncio.wait({task}, timeout=SCHEDULER_TIMEOUT)
                if not task.done() and follower.state.buildset_id is None:
                    task.cancel()
                    console.print(
                        "[orange3]No build started for the sample change "
                        "(was master.py changed?); carrying on.[/]"
                    )
                    return
                await task
            finally:
                task.cancel()
    finally:
        await pump.aclose()


def _welcome(listen: str, address: str, data_dir: Path) -> Panel:
    env_hint = ""
    if address not in ("localhost:9989", "127.0.0.1:9989"):
        env_hint = f"\n(first: export GANTRY_COORDINATOR={address})"
    text = Text.assemble(
        "Coordinator listening on ", (listen, "bold"),
        " — try: ", ("gantry builds", "bold cyan"), " / ", ("gantry watch", "bold cyan"),
        " / ", ("gantry force sample --wait", "bold cyan"), env_hint, "\n",
        "Data directory: ", (str(data_dir), "bold"),
        " (master.py, coordinator.log, worker.log)\n",
        ("Press Ctrl-C to stop.", "dim"),
    )
    return Panel(text, title="Gantry is up", border_style="green", expand=False)


async def _serve(coordinator: LocalProcess, worker: LocalProcess) -> None:
    waits = {asyncio.ensure_future(p.proc.wait()): p for p in (coordinator, worker)}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    process = waits[next(iter(done))]
    raise process.failure(f"exited unexpectedly (code {process.proc.returncode})")


async def _stop_reporting(client: GantryClient, worker: LocalProcess, console: Console) -> None:
    """Stop the worker, and say what became of the builds that were running (their requests
    go back to the queue: they run again when `gantry up` next runs)."""
    try:
        running = [b for b in await asyncio.wait_for(client.list_builds(limit=100), 5) if not b.complete]
    except (GantryError, TimeoutError):
        running = []
    await worker.stop()
    for build in running:
        try:
            now = await asyncio.wait_for(client.get_build(build.builder, build.number), 5)
        except (GantryError, TimeoutError):
            now = build
        result = now.result.name if now.complete and now.result is not None else "interrupted"
        console.print(
            f"  {build.builder}/{build.number}: {result} — its request is queued again "
            "and runs when `gantry up` next starts"
        )
    if not running:
        console.print("  no build was running")


async def run_up(data_dir: Path, listen: str, console: Console) -> int:
    """Run `gantry up`; returns 0 after Ctrl-C, raises `GantryError` on failure."""
    address = client_address(listen)
    data_dir = prepare_data_dir(data_dir)
    check_port_free(listen)
    processes: list[LocalProcess] = []
    cli = [sys.executable, "-m", "clients.cli"]
    main_task = asyncio.current_task()
    if main_task is not None:
        # SIGTERM (e.g. `timeout`, a service manager) and SIGHUP (the terminal closed) stop
        # the children like Ctrl-C does.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            asyncio.get_running_loop().add_signal_handler(sig, main_task.cancel)
    try:
        with console.status(f"Starting the coordinator on {listen}…"):
            coordinator = await LocalProcess.start("coordinator", [
                *cli, "coordinator", "start", "--config", str(data_dir / "master.py"),
                "--data-dir", str(data_dir), "--listen", listen,
            ], data_dir / "coordinator.log")
            processes.append(coordinator)
        async with GantryClient(address) as client:
            with console.status(f"Starting the coordinator on {listen}…"):
                ready = asyncio.ensure_future(client.wait_ready(STARTUP_TIMEOUT))
                try:
                    await _race_exit(ready, [coordinator], "while starting")
                except CoordinatorUnavailable:
                    raise coordinator.failure(
                        f"did not come up within {STARTUP_TIMEOUT:g}s"
                    ) from None
            console.print(f"[green]✔[/] Coordinator running on {listen} (pid {coordinator.proc.pid})")
            with console.status(f"Starting worker {WORKER_NAME}…"):
                # SIGINT stops the agent now (SIGTERM would drain: wait for running builds).
                worker = await LocalProcess.start("worker", [
                    *cli, "worker", "start", "--coordinator", address, "--name", WORKER_NAME,
                    "--secret-file", str(data_dir / "worker.secret"),
                    "--basedir", str(data_dir / "worker"),
                ], data_dir / "worker.log", signal.SIGINT)
                processes.append(worker)
                connecting = asyncio.ensure_future(_wait_worker(client, worker))
                await _race_exit(connecting, [coordinator], "while the worker was connecting")
            console.print(f"[green]✔[/] Worker {WORKER_NAME} connected (pid {worker.proc.pid})")
            try:
                sample = asyncio.ensure_future(_sample_build(client, console))
                await _race_exit(sample, processes, "during the sample build")
                console.print(_welcome(listen, address, data_dir))
                await _serve(coordinator, worker)
            except asyncio.CancelledError:  # Ctrl-C, SIGTERM, SIGHUP
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                console.print("\nStopping…")
                await _stop_reporting(client, worker, console)
                return 0
            return 1  # not reached: _serve only returns by raising
    except asyncio.CancelledError:  # stopped while starting
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        console.print("\nStopping…")
        return 0
    finally:
        for process in reversed(processes):  # the worker first, then the coordinator
            await process.stop()
