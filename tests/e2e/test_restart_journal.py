"""Steps that run several commands survive their coordinator killed (SIGKILL) in the middle:
a ShellSequence, a Git checkout followed by a shell step, and a Trigger waiting for the build it
started. The restarted coordinator replays each running step from its command journal: what it
did before is not done again, the command in flight is adopted from the worker, the rest runs.
Each build ends SUCCESS with its whole logs, and every command's side effect (a line appended to
a file) happened exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from protos.gantry.v1 import logs_pb2
from tests.e2e.harness import SUCCESS, TIMEOUT, Cluster, Coordinator, describe_events, poll
from tests.e2e.test_git import make_repo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LINES = 40
EXPECTED = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))


def slow(effects: Path, name: str) -> str:
    """A command that appends "start/end NAME" to `effects` around LINES lines, one every 0.1 s."""
    return (
        f"echo 'start {name}' >> {effects}; i=1; while [ $i -le {LINES} ]; do printf 'line %d\\n' $i; "
        f"i=$((i+1)); sleep 0.1; done; echo 'end {name}' >> {effects}"
    )


async def wait_in_log(coord: Coordinator, builder: str, number: int, step: str, log: str, needle: bytes) -> None:
    """Follow a step's log until `needle` is in it (the step is mid-way)."""

    async def has_log() -> bool:
        build = await coord.get_build(builder, number)
        return any(s.name == step and any(lg.name == log for lg in s.logs) for s in build.steps)

    await poll(has_log, what=f"log {log} of step {step} exists")
    follow = coord.logs.FollowLog(
        logs_pb2.ReadLogRequest(builder=builder, build_number=number, step=step, log=log, channel=logs_pb2.ALL)
    )
    seen = b""
    try:
        async with asyncio.timeout(TIMEOUT):
            async for part in follow:
                seen += part.data
                if needle in seen:
                    return
    finally:
        follow.cancel()
    raise AssertionError(f"{needle!r} never came in {step}/{log}: {seen!r}")


async def killed_and_restarted(coord: Coordinator) -> None:
    await coord.stop(signal.SIGKILL)  # mid-step; the worker keeps its commands running
    await coord.start()


async def test_a_shell_sequence_continues_after_its_coordinator_is_killed(
    cluster: Cluster, tmp_path: Path, db: str | None
) -> None:
    effects = tmp_path / "effects"
    config = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellSequence(name="seq", commands=[
            ShellArg("echo one; echo one >> {effects}"),
            ShellArg({slow(effects, "two")!r}),
            ShellArg("echo three; echo three >> {effects}"),
        ]),
        ShellCommand(name="after", command="echo after >> {effects}"),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""
    coord = await cluster.start_coordinator(config, db=db, heartbeat=1)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="seq")
    number = started.build_number
    await wait_in_log(coord, "b", number, "seq", "stdio2", b"line 5\n")

    await killed_and_restarted(coord)

    rec = await coord.record(since=0)
    finished = await rec.wait_kind("build.finished", builder="b", build_number=number)
    assert finished.result == SUCCESS, describe_events(rec.events)
    assert [b.number for b in await coord.list_builds("b")] == [number]  # not run again
    assert effects.read_text() == "one\nstart two\nend two\nthree\nafter\n"  # each command once
    assert await coord.read_log("b", number, "seq", logs_pb2.STDOUT) == b"one\n"
    assert await coord.read_log("b", number, "seq", logs_pb2.STDOUT, log="stdio2") == EXPECTED
    assert await coord.read_log("b", number, "seq", logs_pb2.STDOUT, log="stdio3") == b"three\n"


def git_wrapper(bin_dir: Path, effects: Path, release: Path) -> None:
    """A `git` first on the worker's PATH: it appends each git command to `effects`, and
    `git checkout` waits for `release` (the coordinator is killed meanwhile)."""
    real = shutil.which("git")
    assert real is not None
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "git $*" >> {effects}\n'
        'if [ "$1" = checkout ]; then\n'
        '  echo "checkout waits"\n'
        f"  while [ ! -e {release} ]; do sleep 0.05; done\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)


async def test_a_git_checkout_then_a_shell_step_continue_after_the_coordinator_is_killed(
    cluster: Cluster, tmp_path: Path
) -> None:
    effects, release = tmp_path / "effects", tmp_path / "release"
    origin = tmp_path / "origin"
    head = make_repo(origin, {"hello.txt": "hello\n"})
    git_wrapper(tmp_path / "bin", effects, release)
    config = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[
        Git(repourl={str(origin)!r}),
        ShellCommand(name="build", command="cat hello.txt; echo build >> {effects}"),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""
    coord = await cluster.start_coordinator(config, heartbeat=1)
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    await cluster.start_worker(coord, "w1", "secret1", env={"PATH": path})
    rec = await coord.record(since=0)
    await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="git")
    number = started.build_number
    await wait_in_log(coord, "b", number, "git", "stdio", b"checkout waits\n")

    await killed_and_restarted(coord)
    release.touch()

    rec = await coord.record(since=0)
    finished = await rec.wait_kind("build.finished", builder="b", build_number=number)
    assert finished.result == SUCCESS, describe_events(rec.events)
    ran = effects.read_text().splitlines()
    assert ran[-1] == "build" and ran.count("build") == 1
    gits = ran[:-1]
    assert len(gits) == len(set(gits)), gits  # no git command ran twice
    assert gits[0].startswith("git ls-remote") and "git checkout -B master" in gits
    assert gits[-1] == "git rev-parse HEAD"
    log = await coord.read_log("b", number, "git", logs_pb2.STDOUT)
    assert log.count(b"checkout waits\n") == 1  # the log is whole, nothing in it twice
    assert head.encode() in log
    assert await coord.read_log("b", number, "build", logs_pb2.STDOUT) == b"hello\n"


async def test_a_trigger_waiting_for_its_build_continues_without_triggering_twice(
    cluster: Cluster, tmp_path: Path, db: str | None
) -> None:
    effects = tmp_path / "effects"
    config = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("parent", workers=["w1"], steps=[
            ShellCommand(name="prep", command="echo prep >> {effects}"),
            Trigger(name="trigger", schedulerNames=["children"], waitForFinish=True),
            ShellCommand(name="after", command="echo after >> {effects}"),
        ]),
        Builder("child", workers=["w1"], steps=[ShellCommand(name="lines", command={slow(effects, "child")!r})]),
    ],
    schedulers=[ForceScheduler("force", builders=["parent"]), Triggerable("children", ["child"])],
)
"""
    coord = await cluster.start_coordinator(config, db=db, heartbeat=1)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    await coord.force("parent")
    parent = (await rec.wait_kind("step.started", builder="parent", step_name="trigger")).build_number
    child = (await rec.wait_kind("step.started", builder="child", step_name="lines")).build_number
    await wait_in_log(coord, "child", child, "lines", "stdio", b"line 5\n")

    await killed_and_restarted(coord)

    rec = await coord.record(since=0)
    finished = await rec.wait_kind("build.finished", builder="parent", build_number=parent)
    assert finished.result == SUCCESS, describe_events(rec.events)
    assert [b.number for b in await coord.list_builds("child")] == [child]  # triggered once
    assert [b.number for b in await coord.list_builds("parent")] == [parent]
    assert effects.read_text() == "prep\nstart child\nend child\nafter\n"
    assert await coord.read_log("child", child, "lines", logs_pb2.STDOUT) == EXPECTED
    build = await coord.get_build("parent", parent)
    trigger = next(s for s in build.steps if s.name == "trigger")
    assert [u.name for u in trigger.urls] == [f"child #{child}"]  # linked once
