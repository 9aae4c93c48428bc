"""A coordinator killed in the middle of a step: the command keeps running on the worker, the
restarted coordinator reloads the build from the database, the worker re-attaches, and the build
finishes SUCCESS with its whole log — the step's side effect happening once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from protos.gantry.v1 import logs_pb2
from tests.e2e.harness import SUCCESS, Cluster, describe_events
from tests.e2e.test_reattach import wait_output

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LINES = 60
EXPECTED = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))


async def test_a_build_survives_its_coordinator_killed(cluster: Cluster, tmp_path: Path, db: str | None) -> None:
    await survives(cluster, tmp_path, db, signal.SIGKILL)


async def test_a_build_survives_its_coordinator_stopped(cluster: Cluster, tmp_path: Path) -> None:
    # SIGTERM, as a service manager sends it on upgrade (SQLite only: the kill covers both).
    await survives(cluster, tmp_path, None, signal.SIGTERM)


async def survives(cluster: Cluster, tmp_path: Path, db: str | None, sig: int) -> None:
    effects = tmp_path / "effects"
    step = (
        f"echo start >> {effects}; i=1; while [ $i -le {LINES} ]; do printf 'line %d\\n' $i; "
        f"i=$((i+1)); sleep 0.1; done; echo end >> {effects}"
    )
    config = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[
        SetPropertyFromCommand(name="before", command=["echo", "abc"], property="got"),
        ShellCommand(name="lines", command={step!r}),
        ShellCommand(name="after", command=["echo", Interpolate("got=%(prop:got)s")]),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""
    coord = await cluster.start_coordinator(config, db=db, heartbeat=1)
    worker = await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="lines")
    await wait_output(coord, started.build_number, b"line 5\n")

    await coord.stop(sig)  # mid-step; the command keeps running on the worker
    await coord.start()

    rec = await coord.record(since=0)
    finished = await rec.wait_kind("build.finished", builder="b", build_number=started.build_number)
    assert finished.result == SUCCESS, describe_events(rec.events)
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    assert [b.number for b in await coord.list_builds("b")] == [started.build_number]  # not run again
    assert await coord.read_log("b", started.build_number, "lines", logs_pb2.STDOUT) == EXPECTED
    # The property set before the restart is still there after it.
    assert await coord.read_log("b", started.build_number, "after", logs_pb2.STDOUT) == b"got=abc\n"
    assert effects.read_text() == "start\nend\n"  # the step's side effect, once
    assert "re-attached command" in worker.process.output()
