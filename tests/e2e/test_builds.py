"""Builds end to end, on SQLite and PostgreSQL: scheduling changes, step results, forced builds
with properties, and logs stored byte for byte."""

from __future__ import annotations

import asyncio
import json

import pytest

from protos.gantry.v1 import logs_pb2, status_pb2
from tests.e2e.harness import (
    FAILURE,
    MIB,
    PATTERN_SCRIPT,
    SKIPPED,
    SUCCESS,
    Cluster,
    describe_events,
    pattern_bytes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = f"""
PATTERN_SCRIPT = {PATTERN_SCRIPT!r}

config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=1), Worker("w2", "secret2")],
    builders=[
        Builder("b", workers=["w1", "w2"], steps=[
            ShellCommand(name="hello", command=["echo", "hi"]),
            ShellCommand(name="env", command="echo \\"branch=$GANTRY_E2E\\"", env={{"GANTRY_E2E": "yes"}}),
        ]),
        Builder("failing", workers=["w1", "w2"], steps=[
            ShellCommand(name="hello", command=["echo", "hi"]),
            ShellCommand(name="soft", command="echo soft; exit 1"),
            ShellCommand(name="still-runs", command=["echo", "ran"]),
            ShellCommand(name="fail", command="echo failing >&2; exit 3", haltOnFailure=True),
            ShellCommand(name="after", command="echo must-not-run"),
            ShellCommand(name="cleanup", command=["echo", "cleaned"], alwaysRun=True),
        ]),
        Builder("bytes", workers=["w1", "w2"], steps=[
            ShellCommand(name="emit", command=["python3", "-c", PATTERN_SCRIPT, "{{out}}", "{{err}}"]),
        ]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=2.0, builders=["b"]),
        ForceScheduler("force", builders=["b", "failing", "bytes"]),
    ],
)
"""
STDOUT_SIZE = 4 * MIB + 123_457  # several ReadLog pages
STDERR_SIZE = MIB + 65_537


def config(out: int = STDOUT_SIZE, err: int = STDERR_SIZE) -> str:
    return CONFIG.replace("{out}", str(out)).replace("{err}", str(err))


async def test_changes_wait_for_the_tree_stable_timer_and_build_together(
    cluster: Cluster, db: str | None
) -> None:
    coord = await cluster.start_coordinator(config(), db=db)
    await cluster.start_workers(coord, ("w1", "secret1"), ("w2", "secret2"))
    rec = await coord.record()

    other = (await coord.submit({"branch": "feature", "comments": "elsewhere"})).change_ids
    ids: list[int] = []
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for n in range(5):
        # Not synchronisation but the scenario: changes 0.6 s apart on a fixed schedule, each
        # well within the 2 s tree-stable timer of the previous one, 2.4 s in all. A timer that
        # did not restart on each change would have built the first changes without the last.
        await asyncio.sleep(max(0.0, begin + 0.6 * n - loop.time()))
        ids += (await coord.submit({"comments": f"commit {n}", "files": [f"f{n}.c"]})).change_ids
    assert len(ids) == 5 and len(set(ids + list(other))) == 6

    # The scenario as the coordinator saw it (its own timestamps): no gap reached the timer,
    # but all of them together exceed it.
    def change_id(e: status_pb2.Event) -> int:
        return int(json.loads(e.details_json)["change_id"])

    await rec.wait_for(lambda e: e.kind == "change.added" and change_id(e) == ids[-1])
    at = {change_id(e): e.at.ToMicroseconds() / 1e6 for e in rec.of_kind("change.added")}
    times = [at[i] for i in ids]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) < 2.0 and times[-1] - times[0] > 2.0, f"changes arrived {gaps} s apart"

    added = await rec.wait_kind("buildset.added")
    assert sorted(json.loads(added.details_json)["change_ids"]) == sorted(ids)
    last_change = max((e for e in rec.of_kind("change.added")), key=lambda e: e.id)
    waited = added.at.ToDatetime() - last_change.at.ToDatetime()
    assert waited.total_seconds() >= 1.9, f"buildset {waited} after the last change: no timer?"

    done = await rec.wait_kind("buildset.finished", buildset_id=added.buildset_id)
    assert done.result == SUCCESS, describe_events(rec.events)
    builds = await coord.list_builds("b")
    assert len(builds) == 1, builds
    build = await coord.get_build("b", builds[0].number)
    assert build.complete and build.result == SUCCESS
    assert build.worker in ("w1", "w2")
    assert sorted(c.id for c in build.changes) == sorted(ids)
    assert [(s.name, s.result, s.complete) for s in build.steps] == [
        ("hello", SUCCESS, True),
        ("env", SUCCESS, True),
    ]
    assert await coord.read_log("b", build.number, "env", logs_pb2.STDOUT) == b"branch=yes\n"
    assert await coord.read_log("b", build.number, "0", logs_pb2.STDOUT) == b"hi\n"

    # The change on another branch was stored but never scheduled.
    assert [e for e in rec.of_kind("buildset.added")] == [added]
    for change_id in other:
        assert not any(
            change_id in json.loads(e.details_json).get("change_ids", [])
            for e in rec.of_kind("buildset.added")
        )
    assert len(rec.of_kind("change.added")) == 6


async def test_failing_step_fails_the_build_and_skips_later_steps_except_always_run(
    cluster: Cluster, db: str | None
) -> None:
    coord = await cluster.start_coordinator(config(), db=db)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()

    forced = await coord.force("failing", reason="check failure handling")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == FAILURE
    finished = rec.of_kind("build.finished", builder="failing")
    assert [e.result for e in finished] == [FAILURE]

    build = await coord.get_build("failing", finished[0].build_number)
    assert build.result == FAILURE and build.complete
    assert [(s.number, s.name, s.result) for s in build.steps] == [
        (0, "hello", SUCCESS),
        (1, "soft", FAILURE),  # haltOnFailure is False by default: the build goes on
        (2, "still-runs", SUCCESS),
        (3, "fail", FAILURE),  # haltOnFailure: what follows is skipped ...
        (4, "after", SKIPPED),
        (5, "cleanup", SUCCESS),  # ... except alwaysRun steps
    ]
    assert await coord.read_log("failing", build.number, "fail", logs_pb2.STDERR) == b"failing\n"
    assert await coord.read_log("failing", build.number, "cleanup", logs_pb2.STDOUT) == b"cleaned\n"
    # The skipped step ran no command: no step.started for it, a SKIPPED step.finished.
    assert not rec.of_kind("step.started", builder="failing", step_name="after")
    [skipped] = rec.of_kind("step.finished", builder="failing", step_name="after")
    assert skipped.result == SKIPPED


async def test_forced_build_carries_its_properties(cluster: Cluster, db: str | None) -> None:
    coord = await cluster.start_coordinator(config(), db=db)
    await cluster.start_worker(coord, "w2", "secret2")
    rec = await coord.record()

    forced = await coord.force(
        "b",
        properties={"n": 3, "flavour": "debug", "opts": {"lto": True}},
        reason="release candidate",
        owner="Jane <jane@example.org>",
        branch="release",
        revision="abc123",
    )
    assert forced.buildset_id > 0 and forced.build_request_id > 0
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    [started] = rec.of_kind("build.started", builder="b")
    assert started.worker == "w2"

    build = await coord.get_build("b", started.build_number)
    assert build.result == SUCCESS
    assert build.build_request_id == forced.build_request_id
    assert build.buildset_id == forced.buildset_id
    assert "release candidate" in build.reason
    props = {p.name: (json.loads(p.value_json), p.source) for p in build.properties}
    assert props["n"] == (3, "Force Build Form")
    assert props["flavour"] == ("debug", "Force Build Form")
    assert props["opts"] == ({"lto": True}, "Force Build Form")
    assert props["branch"][0] == "release"
    assert props["revision"][0] == "abc123"
    assert props["workername"][0] == "w2"
    assert props["buildername"][0] == "b"
    assert [(s.branch, s.revision) for s in build.sourcestamps] == [("release", "abc123")]


async def test_stored_log_equals_the_commands_output_byte_for_byte(
    cluster: Cluster, db: str | None
) -> None:
    coord = await cluster.start_coordinator(config(), db=db)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()

    forced = await coord.force("bytes")
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS, describe_events(rec.events)
    [finished] = rec.of_kind("build.finished", builder="bytes")

    expected_out = pattern_bytes("stdout", STDOUT_SIZE)
    expected_err = pattern_bytes("stderr", STDERR_SIZE)
    stdout = await coord.read_log("bytes", finished.build_number, "emit", logs_pb2.STDOUT)
    stderr = await coord.read_log("bytes", finished.build_number, "emit", logs_pb2.STDERR)
    assert len(stdout) == len(expected_out)
    assert stdout == expected_out
    assert len(stderr) == len(expected_err)
    assert stderr == expected_err

    header = await coord.read_log("bytes", finished.build_number, "emit", logs_pb2.HEADER)
    everything = await coord.read_log("bytes", finished.build_number, "emit", logs_pb2.ALL)
    assert len(everything) == len(stdout) + len(stderr) + len(header)
    build = await coord.get_build("bytes", finished.build_number)
    [log] = build.steps[0].logs
    assert (log.name, log.complete) == ("stdio", True)
    assert log.size == len(everything)
