"""TLS end to end with real processes: a coordinator started with --tls-cert/--tls-key and a
client CA, a worker agent presenting its certificate that runs a build, the CLI trusting the
test CA, and the clear messages for a plaintext agent and an unprotected exposed coordinator."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import grpc
import pytest

from tests.e2e.harness import SUCCESS, TIMEOUT, Cluster, child_env, poll
from tests.pki import TestCA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(name="s", command="echo over-tls")])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_env()
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_worker_and_cli_over_mutual_tls(cluster: Cluster, tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("server")
    worker_cert = ca.issue("w1", client=True)
    tester = ca.issue("tester", client=True)
    coord = await cluster.start_coordinator(
        CONFIG,
        extra_args=["--tls-cert", str(server.cert), "--tls-key", str(server.key), "--tls-client-ca", str(ca.cert),
                    "--tls-require-client-cert"],
        credentials=grpc.ssl_channel_credentials(ca.cert.read_bytes(), tester.key.read_bytes(),
                                                 tester.cert.read_bytes()),
    )
    await cluster.start_worker(coord, "w1", "secret1", extra_args=[
        "--tls-ca", str(ca.cert), "--tls-cert", str(worker_cert.cert), "--tls-key", str(worker_cert.key)])
    await coord.force("b")
    async def finished() -> object:
        builds = await coord.list_builds("b")
        return builds[0] if builds and builds[0].complete else None

    build = await poll(finished, what="build b/1 finishes")
    assert build.result == SUCCESS  # type: ignore[attr-defined]

    code, out, err = await run("-m", "clients.cli", "builds", "--builder", "b", "--json",
                               "--coordinator", coord.address, "--tls-ca", str(ca.cert),
                               "--tls-cert", str(tester.cert), "--tls-key", str(tester.key))
    assert code == 0, err
    doc = json.loads(out)
    assert [b["number"] for b in doc["builds"]] == [1], doc

    code, out, err = await run("-m", "clients.cli", "builds", "--builder", "b", "--coordinator", coord.address)
    assert code == 1 and "may require TLS" in err and "Traceback" not in err
    # Without a client certificate, mutual TLS refuses the handshake.
    code, out, err = await run("-m", "clients.cli", "builds", "--coordinator", coord.address, "--tls-ca", str(ca.cert))
    assert code == 1 and "Traceback" not in err, err


async def test_a_plaintext_agent_is_told_the_coordinator_may_require_tls(cluster: Cluster, tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("server")
    coord = await cluster.start_coordinator(
        CONFIG, extra_args=["--tls-cert", str(server.cert), "--tls-key", str(server.key)],
        credentials=grpc.ssl_channel_credentials(ca.cert.read_bytes()),
    )
    agent = await cluster.start_worker(coord, "w1", "secret1", wait=False)
    await agent.process.wait_line(r"may require TLS \(--tls-ca FILE\)", TIMEOUT)


async def test_an_exposed_coordinator_without_tls_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "master.py").write_text("from coordinator.config import *\nconfig = MasterConfig()\n")
    code, _, err = await run("-m", "coordinator", "start", "--config", str(tmp_path / "master.py"),
                             "--data-dir", str(tmp_path / "d"), "--listen", "0.0.0.0:0")
    assert code == 1
    assert "beyond loopback without TLS (--tls-cert FILE --tls-key FILE" in err and "--insecure" in err
    assert "Traceback" not in err
