"""Workflows against a real coordinator and real workers: build matrices (labels, exclude,
fail_fast on and off, `gantry force --wait` grouping them) and superseded work cancelled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import (
    CANCELLED,
    FAILURE,
    SUCCESS,
    Cluster,
    Coordinator,
    poll,
    run_cli,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def gate(path: Path) -> str:
    """A shell command that runs until the test creates `path`."""
    return f"while [ ! -f {path} ]; do sleep 0.05; done"


async def finished(coord: Coordinator, builder: str) -> control_pb2.Build | None:
    builds = [b for b in await coord.list_builds(builder) if b.complete]
    return builds[0] if builds else None


def props(build: control_pb2.Build) -> dict[str, object]:
    return {p.name: json.loads(p.value_json) for p in build.properties}


MATRIX = """
config = MasterConfig(
    workers=[Worker("wl", "s1"), Worker("wa", "s2")],
    builders=[
        Builder("test", workers=["wl", "wa"],
                matrix=Matrix(python=["3.11", "3.12"], os=["linux", "arm"],
                              exclude=[{{"python": "3.11", "os": "arm"}}], labels=["os"]),
                steps=[ShellCommand(name="run", command=Interpolate(
                    "echo python=%(prop:python)s os=%(prop:os)s on %(prop:workername)s"))]),
        Builder("ff", workers=["wl", "wa"], fail_fast={fail_fast},
                matrix=Matrix(os=["linux", "arm"], labels=["os"]),
                steps=[ShellCommand(name="run", command=Interpolate(
                    "if [ %(prop:os)s = linux ]; then exit 1; else {hold}; fi"))]),
    ],
    schedulers=[ForceScheduler("force", builders=["test", "ff"])],
)
"""


async def test_a_2x2_matrix_with_labels_and_an_exclude(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(MATRIX.format(fail_fast=False, hold=gate(tmp_path / "never")))
    await cluster.start_worker(coord, "wl", "s1", labels=["linux"])
    await cluster.start_worker(coord, "wa", "s2", labels=["arm"])
    code, out, err = await run_cli("force", "test", "--wait", "--coordinator", coord.address)
    text = out.decode()
    assert code == 0, text + err.decode()
    combos = ["test@3.11,linux", "test@3.12,linux", "test@3.12,arm"]  # 3.11 on arm excluded
    summary = text[text.index("buildset"):].splitlines()
    assert [ln.split()[1] for ln in summary[-3:]] == sorted(f"{c}/1" for c in combos)  # grouped, sorted
    builds = {c: await coord.get_build(c, 1) for c in combos}
    assert len({b.buildset_id for b in builds.values()}) == 1  # one buildset
    for combo, build in builds.items():
        python, os_ = combo.split("@")[1].split(",")
        assert build.result == SUCCESS
        assert build.worker == ("wl" if os_ == "linux" else "wa")  # chosen by label
        assert {"python": python, "os": os_}.items() <= props(build).items()
        log = await coord.read_log(combo, 1, "run")
        assert f"python={python} os={os_} on {build.worker}".encode() in log
    # One combination alone: its matrix's ForceScheduler forces it.
    one = await coord.force("test@3.12,arm")
    assert one.build_request_id
    again = await poll(lambda: _done(coord, "test@3.12,arm", 2), what="test@3.12,arm #2")
    assert again is not None and again.worker == "wa" and again.buildset_id == one.buildset_id
    code, out, err = await run_cli("builds", "--builder", "test", "--coordinator", coord.address)
    rows = [line.split()[0] for line in out.decode().splitlines() if line.strip().startswith("test@")]
    assert code == 0 and rows == ["test@3.12,arm", *sorted(combos)], out.decode() + err.decode()
    listed = await coord.control.ListBuilders(control_pb2.ListBuildersRequest(), timeout=60)
    assert sorted(b.name for b in listed.builders if b.name.startswith("test@")) == sorted(combos)



@pytest.mark.parametrize("fail_fast", [True, False])
async def test_fail_fast_stops_the_other_combinations(cluster: Cluster, tmp_path: Path, fail_fast: bool) -> None:
    hold = tmp_path / "hold"
    coord = await cluster.start_coordinator(MATRIX.format(fail_fast=fail_fast, hold=gate(hold)))
    await cluster.start_worker(coord, "wl", "s1", labels=["linux"])
    await cluster.start_worker(coord, "wa", "s2", labels=["arm"])
    forced = await coord.force("ff")
    linux = await poll(lambda: finished(coord, "ff@linux"), what="ff@linux fails")
    assert linux is not None and linux.result == FAILURE
    if not fail_fast:
        arm_running = await coord.list_builds("ff@arm")
        hold.touch()  # it was left running: let it pass
        arm = await poll(lambda: finished(coord, "ff@arm"), what="ff@arm ends")
        assert arm is not None and arm.result == SUCCESS and arm_running
    else:
        async def arm_done() -> bool:
            reqs = await coord.control.ListBuildRequests(
                control_pb2.ListBuildRequestsRequest(buildset_id=forced.buildset_id), timeout=60)
            return all(r.complete for r in reqs.requests) and len(reqs.requests) == 2

        await poll(arm_done, what="the buildset completes")
        reqs = await coord.control.ListBuildRequests(
            control_pb2.ListBuildRequestsRequest(buildset_id=forced.buildset_id), timeout=60)
        assert {r.builder: r.result for r in reqs.requests} == {"ff@linux": FAILURE, "ff@arm": CANCELLED}
        assert not hold.exists()


async def test_a_push_supersedes_the_running_build_of_its_branch(cluster: Cluster, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    coord = await cluster.start_coordinator(f"""
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[Builder("test", workers=["w1"], steps=[ShellCommand(name="run", command={gate(hold)!r})])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=None, builders=["test"])],
    cancellers=[OldBuildCanceller("superseded", builders=["test"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1")
    rec = await coord.record(since=0)
    await coord.submit({"revision": "a" * 40})
    await rec.wait_kind("step.started", builder="test", build_number=1)
    await coord.submit({"revision": "b" * 40})
    old = await poll(lambda: finished(coord, "test"), what="test #1 is cancelled")
    assert old is not None and old.number == 1 and old.result == CANCELLED
    log = (await coord.read_log("test", 1, "run")).decode()
    assert "superseded by a newer change on branch 'main' (revision bbbbbbbbbbbb)" in log, log
    started = await rec.wait_kind("build.started", builder="test", build_number=2)
    hold.touch()
    new = await poll(lambda: _build_done(coord, 2), what="test #2 passes")
    assert new is not None and new.result == SUCCESS and new.buildset_id == started.buildset_id
    assert new.sourcestamps[0].revision == "b" * 40


async def _build_done(coord: Coordinator, number: int) -> control_pb2.Build | None:
    return await _done(coord, "test", number)


async def _done(coord: Coordinator, builder: str, number: int) -> control_pb2.Build | None:
    builds = [b for b in await coord.list_builds(builder) if b.number == number and b.complete]
    return await coord.get_build(builder, number) if builds else None
