"""The Git source step end to end: real repositories made by the test, a real coordinator and
worker; the checkout on the worker's disk is inspected after each build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import (
    FAILURE,
    SKIPPED,
    SUCCESS,
    Cluster,
    Coordinator,
    describe_events,
    run_cli,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Tester", "-c", "user.email=t@example.org",
         "-c", "init.defaultBranch=master", "-c", "protocol.file.allow=always", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> str:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    return commit(path, files, "initial")


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def config(origin: Path, sub_origin: Path) -> str:
    url = origin.as_uri()
    return f"""
REPO = {str(origin)!r}
builders = [
    Builder("inc", workers=["w1"], steps=[Git(repourl=REPO, mode="incremental")]),
    Builder("clean", workers=["w1"], steps=[Git(repourl=REPO, mode="full", method="clean")]),
    Builder("fresh", workers=["w1"], steps=[Git(repourl=REPO, mode="full", method="fresh")]),
    Builder("clobber", workers=["w1"], steps=[Git(repourl={url!r}, mode="full", method="clobber")]),
    Builder("shallow", workers=["w1"], steps=[Git(repourl={url!r}, shallow=True)]),
    Builder("sub", workers=["w1"], steps=[Git(repourl=REPO, submodules=True, branch="with-sub")]),
    Builder("nobranch", workers=["w1"], steps=[
        Git(repourl=REPO, branch="nope"),
        ShellCommand(name="after", command=["echo", "after"]),
    ]),
    Builder("norepo", workers=["w1"], steps=[Git(repourl=REPO + "-missing")]),
    Builder("onchange", workers=["w1"], steps=[Git(repourl=REPO)]),
]
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=builders,
    schedulers=[
        ForceScheduler("force", builders=[b.name for b in builders]),
        SingleBranchScheduler("master", branch="master", tree_stable_timer=0, builders=["onchange"]),
    ],
)
"""


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    make_repo(repo, {"README": "one\n", ".gitignore": "*.o\n"})
    return repo


async def build(coord: Coordinator, builder: str, **kw):  # type: ignore[no-untyped-def]
    rec = await coord.record()
    forced = await coord.force(builder, **kw)
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    result = await coord.get_build(builder, finished.build_number)
    assert done.result == result.result
    await rec.aclose()
    return result, rec


def got_revision(b) -> str:  # type: ignore[no-untyped-def]
    return json.loads({p.name: p for p in b.properties}["got_revision"].value_json)


def property_source(b, name: str) -> str:  # type: ignore[no-untyped-def]
    return {p.name: p for p in b.properties}[name].source


async def start(cluster: Cluster, origin: Path, tmp_path: Path) -> tuple[Coordinator, Path]:
    sub = tmp_path / "sub-origin"
    make_repo(sub, {"lib.txt": "library\n"})
    coord = await cluster.start_coordinator(config(origin, sub))
    worker = await cluster.start_worker(coord, "w1", "secret1")
    # A branch with a submodule, added by path (the worker clones it from there).
    git(origin, "checkout", "-q", "-b", "with-sub")
    git(origin, "submodule", "add", "-q", str(sub), "lib")
    git(origin, "commit", "-q", "-m", "add lib")
    git(origin, "checkout", "-q", "master")
    return coord, worker.basedir


async def test_incremental_keeps_untracked_files_and_updates(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    coord, basedir = await start(cluster, origin, tmp_path)
    first = git(origin, "rev-parse", "master")
    b, rec = await build(coord, "inc")
    assert b.result == SUCCESS, describe_events(rec.events)
    checkout = basedir / "inc" / "build"
    assert (checkout / "README").read_text() == "one\n"
    assert got_revision(b) == first and property_source(b, "got_revision") == "Git"
    assert b.steps[0].state_string == "update"

    (checkout / "untracked.txt").write_text("mine\n")
    second = commit(origin, {"README": "two\n", "NEW": "new\n"}, "second")
    b, rec = await build(coord, "inc")
    assert b.result == SUCCESS, describe_events(rec.events)
    assert (checkout / "README").read_text() == "two\n" and (checkout / "NEW").exists()
    assert (checkout / "untracked.txt").read_text() == "mine\n"
    assert got_revision(b) == second == git(checkout, "rev-parse", "HEAD")
    log = (await coord.read_log("inc", b.number, "git")).decode()
    assert "git fetch" in log and "git reset --hard FETCH_HEAD" in log


async def test_full_clean_fresh_and_clobber(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    coord, basedir = await start(cluster, origin, tmp_path)
    for builder in ("clean", "fresh", "clobber"):
        b, rec = await build(coord, builder)
        assert b.result == SUCCESS, describe_events(rec.events)
        checkout = basedir / builder / "build"
        (checkout / "junk.txt").write_text("untracked\n")
        (checkout / "out.o").write_text("ignored\n")
        (checkout / ".git" / "marker").write_text("only a new clone loses this\n")
        b, rec = await build(coord, builder)
        assert b.result == SUCCESS, describe_events(rec.events)
        assert (checkout / "README").read_text() == "one\n"
        assert not (checkout / "junk.txt").exists(), builder
        assert (checkout / "out.o").exists() == (builder == "clean"), builder
        assert (checkout / ".git" / "marker").exists() == (builder != "clobber"), builder


async def test_shallow_clone_has_one_commit(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    commit(origin, {"README": "two\n"}, "second")
    commit(origin, {"README": "three\n"}, "third")
    coord, basedir = await start(cluster, origin, tmp_path)
    b, rec = await build(coord, "shallow")
    assert b.result == SUCCESS, describe_events(rec.events)
    checkout = basedir / "shallow" / "build"
    assert git(checkout, "rev-list", "--count", "HEAD") == "1"
    assert (checkout / "README").read_text() == "three\n"
    assert got_revision(b) == git(origin, "rev-parse", "master")


async def test_submodules_are_checked_out(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    coord, basedir = await start(cluster, origin, tmp_path)
    b, rec = await build(coord, "sub")
    assert b.result == SUCCESS, describe_events(rec.events)
    checkout = basedir / "sub" / "build"
    assert (checkout / "lib" / "lib.txt").read_text() == "library\n"
    assert got_revision(b) == git(origin, "rev-parse", "with-sub")


async def test_revision_of_the_source_stamp_is_checked_out(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    first = git(origin, "rev-parse", "HEAD")
    commit(origin, {"README": "two\n"}, "second")
    coord, basedir = await start(cluster, origin, tmp_path)
    b, rec = await build(coord, "inc", revision=first, branch="master")
    assert b.result == SUCCESS, describe_events(rec.events)
    checkout = basedir / "inc" / "build"
    assert (checkout / "README").read_text() == "one\n"
    assert got_revision(b) == first == git(checkout, "rev-parse", "HEAD")

    # Then without a revision: the branch head.
    b, rec = await build(coord, "inc")
    assert (checkout / "README").read_text() == "two\n"
    assert got_revision(b) == git(origin, "rev-parse", "master")

    # A revision that does not exist: FAILURE with a plain message.
    b, rec = await build(coord, "inc", revision="0" * 40)
    assert b.result == FAILURE, describe_events(rec.events)
    log = (await coord.read_log("inc", b.number, "git")).decode()
    assert f"revision {'0' * 40} does not exist in the repository {origin}" in log


async def test_a_change_from_sendchange_checks_out_its_revision(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    first = git(origin, "rev-parse", "HEAD")
    commit(origin, {"README": "two\n"}, "second")
    coord, basedir = await start(cluster, origin, tmp_path)
    rec = await coord.record()
    code, out, err = await run_cli(
        "sendchange", "--coordinator", coord.address, "--author", "Jane <jane@example.org>",
        "--repository", str(origin), "--branch", "master", "--revision", first, "README",
    )
    assert code == 0, err.decode()
    done = await rec.wait_kind("buildset.finished")
    assert done.result == SUCCESS, describe_events(rec.events)
    [finished] = rec.of_kind("build.finished")
    b = await coord.get_build("onchange", finished.build_number)
    assert got_revision(b) == first
    assert (basedir / "onchange" / "build" / "README").read_text() == "one\n"


async def test_missing_branch_or_repository_fails_clearly(cluster: Cluster, origin: Path, tmp_path: Path) -> None:
    coord, _ = await start(cluster, origin, tmp_path)
    b, rec = await build(coord, "nobranch")
    assert b.result == FAILURE, describe_events(rec.events)
    assert [s.result for s in b.steps] == [FAILURE, SKIPPED]  # haltOnFailure, as in Buildbot
    assert b.steps[0].state_string == "update (failure)"
    log = (await coord.read_log("nobranch", b.number, "git")).decode()
    assert f"branch 'nope' does not exist in the repository {origin}" in log
    assert "got_revision" not in {p.name for p in b.properties}

    b, rec = await build(coord, "norepo")
    assert b.result == FAILURE, describe_events(rec.events)
    log = (await coord.read_log("norepo", b.number, "git")).decode()
    assert f"the repository {origin}-missing does not exist or cannot be read" in log
