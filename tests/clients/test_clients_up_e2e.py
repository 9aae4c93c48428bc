"""`gantry up` end to end: real coordinator and worker processes, a sample build, Ctrl-C, and a
second run that keeps the history."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from clients.up import SAMPLE_CONFIG
from tests.e2e.harness import WITH_DEFAULT_SIGINT

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
needs_servers = pytest.mark.skipif(
    importlib.util.find_spec("coordinator") is None
    or importlib.util.find_spec("worker_agent") is None,
    reason="needs the coordinator and worker_agent packages",
)


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")


def gantry(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients", *argv], capture_output=True, text=True, env=env(),
        cwd=ROOT, timeout=60,
    )


def start_up(data: Path, listen: str) -> tuple[subprocess.Popen[str], str]:
    """Start `gantry up` and read its output until it says it is serving."""
    proc = subprocess.Popen(
        [*WITH_DEFAULT_SIGINT, sys.executable, "-m", "clients", "up", "--data-dir", str(data),
         "--listen", listen],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), cwd=ROOT,
    )
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        output.append(line)
        if "Press Ctrl-C" in line:
            break
    return proc, "".join(output)


def stop_up(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    return proc.returncode, rest


@needs_servers
def test_up_serves_a_sample_build_until_ctrl_c(tmp_path: Path, up_port: int) -> None:
    data = tmp_path / "data"
    listen = f"127.0.0.1:{up_port}"
    proc, output = start_up(data, listen)
    try:
        assert "Press Ctrl-C" in output, output + (data / "coordinator.log").read_text()
        assert "build sample/1 success" in output, output
        assert f"Coordinator listening on {listen}" in output

        builds = json.loads(gantry("builds", "--json", "--coordinator", listen).stdout)["builds"]
        assert [(b["builder"], b["number"], b["result"]) for b in builds] == [("sample", 1, "SUCCESS")]
        forced = gantry("force", "sample", "--wait", "--property", "n=3", "--coordinator", listen)
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert "build sample/2 success" in forced.stdout
        log = gantry("log", "sample", "2", "hello", "--channel", "stdout", "--coordinator", listen)
        assert log.stdout == "Hello from Gantry\n"
        full = gantry("log", "sample", "2", "count", "--coordinator", listen).stdout
        followed = gantry("log", "sample", "2", "count", "--follow", "--coordinator", listen).stdout
        assert "step 3" in full and followed == full
        workers = json.loads(gantry("workers", "--json", "--coordinator", listen).stdout)["workers"]
        assert [(w["name"], w["connected"]) for w in workers] == [("local-worker", True)]
    finally:
        code, rest = stop_up(proc)
    assert code == 0, rest
    assert "Traceback" not in output + rest

    assert (data / "master.py").read_text() == SAMPLE_CONFIG
    assert stat.S_IMODE((data / "worker.secret").stat().st_mode) == 0o600

    # A second run reuses the data directory: the history survives.
    proc, output = start_up(data, listen)
    try:
        assert "build sample/3 success" in output, output
    finally:
        code, rest = stop_up(proc)
    assert code == 0, rest


def test_up_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        listen = f"127.0.0.1:{sock.getsockname()[1]}"
        proc = subprocess.run(
            [sys.executable, "-m", "clients", "up", "--data-dir", str(tmp_path), "--listen", listen],
            capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"gantry: error: {listen} is already in use (is another coordinator running? "
        "choose another address with --listen HOST:PORT)"
    ]
