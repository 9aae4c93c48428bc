"""`gantry worker start` as a real process (python -m worker_agent)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from protos.gantry.v1 import worker_pb2
from tests.worker_agent.fakes import wait_gone
from tests.worker_agent.test_connection import SECRET, Conn, FakeCoordinator, run_one_command, serving
from worker_agent.cli import main
from worker_agent.process import ChildProcess

REPO = Path(__file__).resolve().parents[2]


def test_missing_secret_file_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.secret"
    argv = ["start", "--name", "w1", "--secret-file", str(missing), "--basedir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"gantry worker: cannot read secret file {missing}: No such file or directory\n"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["start", "--name", "w1"]) == 2
    assert "--secret-file" in capsys.readouterr().err


def start_agent(address: str, secret_file: Path, basedir: Path, log: Path) -> subprocess.Popen[bytes]:
    # Popen (vfork) rather than asyncio's subprocess API: forking a process with live grpc
    # threads can crash the child (see worker_agent/process.py).
    argv = ["start", "--coordinator", address, "--name", "w1"]
    argv += ["--secret-file", str(secret_file), "--basedir", str(basedir)]
    with open(log, "wb") as err_file:
        return subprocess.Popen([sys.executable, "-m", "worker_agent", *argv], cwd=REPO, stderr=err_file)


async def test_sigterm_drains_and_a_second_sigterm_kills_running_commands(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def script(conn: Conn) -> None:
        start = worker_pb2.StartCommand(command_id="c", shell_command="echo $$; exec sleep 100")
        await conn.send(start=start)
        while not conn.output(1).endswith(b"\n"):
            await conn.recv()
        started.set()
        while await conn.recv() is not None:
            pass

    def draining(conn: Conn) -> list[str]:
        return [m.draining.reason for m in conn.received if m.HasField("draining")]

    secret_file = tmp_path / "secret"
    secret_file.write_text(f"  {SECRET}\n")
    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address:
        popen = start_agent(address, secret_file, tmp_path / "base", tmp_path / "agent.log")
        agent = ChildProcess(popen)
        try:
            async with asyncio.timeout(15):
                await started.wait()
            conn = coordinator.connections[0]
            pid = int(conn.output(1))
            # The first SIGTERM drains: the coordinator hears it, the command goes on.
            popen.send_signal(signal.SIGTERM)
            await coordinator.wait_for(lambda: bool(draining(conn)))
            assert draining(conn) == ["the agent received SIGTERM"]
            assert agent.returncode is None and conn.finished() is None
            # The second stops now.
            popen.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await agent.wait()
        finally:
            if agent.returncode is None:
                popen.kill()
                popen.wait()
    log = (tmp_path / "agent.log").read_text()
    assert agent.returncode == 0, log
    await wait_gone(pid)
    assert f"connected to {address} as w1" in log
    assert "running c: echo $$; exec sleep 100" in log
    assert "received SIGTERM; draining" in log
    assert "received SIGTERM; stopping now" in log
    assert "Traceback" not in log


async def test_a_drained_agent_exits_when_the_coordinator_says_so(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        await run_one_command(conn, worker_pb2.StartCommand(command_id="c", argv=["true"]))
        while (msg := await conn.recv()) is not None:
            if msg.HasField("draining"):
                await conn.send(shutdown=worker_pb2.Shutdown(reason="drained"))

    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n")
    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address:
        popen = start_agent(address, secret_file, tmp_path / "base", tmp_path / "agent.log")
        agent = ChildProcess(popen)
        try:
            # Once a command has run, the session is surely being served.
            await coordinator.wait_for(
                lambda: bool(coordinator.connections) and bool(coordinator.connections[0].finished())
            )
            popen.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await agent.wait()
        finally:
            if agent.returncode is None:
                popen.kill()
                popen.wait()
    log = (tmp_path / "agent.log").read_text()
    assert agent.returncode == 0, log
    assert "exiting: the coordinator says: drained" in log
    assert len(coordinator.connections) == 1  # it did not reconnect


def test_spool_max_sets_each_commands_spool_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker_agent.cli import _options, _parser

    secret = tmp_path / "w1.secret"
    secret.write_text("s3cret\n")
    base = ["start", "--name", "w1", "--secret-file", str(secret), "--basedir", str(tmp_path)]
    assert _options(_parser().parse_args(base)).spool_limit == 64 * 1024 * 1024  # the default
    assert _options(_parser().parse_args([*base, "--spool-max", "1G"])).spool_limit == 1024**3
    assert _options(_parser().parse_args([*base, "--spool-max", "512K"])).spool_limit == 512 * 1024
    assert main([*base, "--spool-max", "lots"]) == 2
    assert "--spool-max: 'lots' is not a size (say 65536, 512K, 64M or 1G)" in capsys.readouterr().err
    assert main([*base, "--spool-max", "100"]) == 2
    assert "too small" in capsys.readouterr().err
