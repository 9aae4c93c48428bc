"""What a new user meets on the command line: stopping a finished build fails plainly, a
missing step or build is named as such, and clients find a local coordinator's address."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT, SUCCESS, TIMEOUT, Cluster, child_env, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="compile", command="echo warning: x", warnOnWarnings=True),
        ShellCommand(name="hello", command=["echo", "hello"]),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


async def test_messages_for_a_finished_build_a_missing_step_and_a_missing_build(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    at = ("--coordinator", coord.address)

    code, out, err = await run_cli("stop", "b", "1", *at)
    assert code != 0 and out == b""
    assert "build b/1 has already finished (SUCCESS); nothing to stop" in err.decode()

    code, _, err = await run_cli("log", "b", "1", "9", *at)
    assert code != 0
    assert "build b/1 has no step 9 (its steps: 0 compile, 1 hello)" in err.decode()
    code, _, err = await run_cli("log", "b", "1", "hello", "--log", "nope", *at)
    assert code != 0
    assert "step 'hello' of build b/1 has no log 'nope' (its logs: stdio)" in err.decode()
    code, _, err = await run_cli("log", "b", "7", "hello", *at)
    assert code != 0
    assert "builder 'b' has no build number 7" in err.decode()


async def test_clients_use_the_address_a_local_coordinator_wrote(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    written = (coord.data_dir / "coordinator.addr").read_text()
    here = tmp_path / "here"
    (here / "gantry-data").mkdir(parents=True)
    (here / "gantry-data" / "coordinator.addr").write_text(written)
    env = child_env()
    env.pop("GANTRY_COORDINATOR", None)
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        "builders",
        "--json",
        cwd=here,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert '"b"' in out.decode()
