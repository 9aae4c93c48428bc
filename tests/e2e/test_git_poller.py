"""GitPoller against real git repositories and a real coordinator."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, Coordinator, poll
from tests.e2e.test_hook import changes, commit, git

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def upstream(tmp: Path) -> tuple[Path, list[str]]:
    repo = tmp / "upstream"
    git(tmp, "init", "-q", "-b", "main", str(repo))
    git(repo, "config", "user.name", "Jane Doe")
    git(repo, "config", "user.email", "jane@example.org")
    return repo, commit(repo, 3, prefix="old")


def config(repo: Path, branches: str = "True") -> str:
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=None, builders=["b"])],
    change_source=[GitPoller({str(repo)!r}, branches={branches}, pollInterval=0.2, pollAtLaunch=True,
                             project="proj", category="polled")],
)
"""


async def revisions(coord: Coordinator) -> list[tuple[str, str]]:
    return [(c.revision, c.branch) for c in await changes(coord)]


async def until_revisions(coord: Coordinator, expected: list[tuple[str, str]]) -> None:
    """Wait until the last expected change is there, then require exactly the expected list."""
    async def arrived() -> bool:
        return expected[-1] in await revisions(coord)

    await poll(arrived, what=f"change {expected[-1]}")
    assert await revisions(coord) == expected


async def test_first_poll_records_heads_then_each_commit_once_across_a_crash(
    cluster: Cluster, tmp_path: Path, db: str | None
) -> None:
    repo, _history = upstream(tmp_path)
    coord = await cluster.start_coordinator(config(repo, '["main"]'), db=db)
    assert coord.process is not None
    await coord.process.wait_line(r"first poll: 1 branch head\(s\) recorded")
    assert await changes(coord) == []  # no flood of history

    [c1] = commit(repo, 1, prefix="a")
    await until_revisions(coord, [(c1, "main")])
    got = (await changes(coord))[0]
    expected = ("Jane Doe <jane@example.org>", "a commit 0\n\nbody 0", ["a0.txt"])
    assert (got.author, got.comments, list(got.files)) == expected
    assert (got.repository, got.project, got.category) == (str(repo), "proj", "polled")
    assert got.when.seconds == int(git(repo, "show", "-s", "--format=%ct", c1).stdout)

    # Killed (no clean shutdown), commits meanwhile, restarted: each commit exactly once.
    await coord.stop(signal.SIGKILL)
    c2, c3 = commit(repo, 2, prefix="b")
    await coord.start()
    await until_revisions(coord, [(c1, "main"), (c2, "main"), (c3, "main")])
    [c4] = commit(repo, 1, prefix="c")
    await until_revisions(coord, [(c1, "main"), (c2, "main"), (c3, "main"), (c4, "main")])

    # Restarted cleanly, the same: nothing submitted again.
    await coord.restart()
    [c5] = commit(repo, 1, prefix="d")
    await until_revisions(coord, [(c1, "main"), (c2, "main"), (c3, "main"), (c4, "main"), (c5, "main")])


async def test_new_branches_and_a_repository_that_goes_away(cluster: Cluster, tmp_path: Path) -> None:
    repo, history = upstream(tmp_path)
    coord = await cluster.start_coordinator(config(repo))
    assert coord.process is not None
    await coord.process.wait_line(r"first poll: 1 branch head\(s\) recorded")

    # A new branch: only the commits no known branch has, oldest first.
    git(repo, "checkout", "-q", "-b", "feature")
    f1, f2 = commit(repo, 2, prefix="f")
    await until_revisions(coord, [(f1, "feature"), (f2, "feature")])
    # A branch at a known commit brings nothing; a commit on it does.
    git(repo, "branch", "copy", history[1])
    git(repo, "checkout", "-q", "main")
    await cluster.start_worker(coord, "w1", "secret1")
    [m1] = commit(repo, 1, prefix="m")
    await until_revisions(coord, [(f1, "feature"), (f2, "feature"), (m1, "main")])

    async def built() -> list:  # the scheduler hears of polled changes like any other
        return [b for b in await coord.list_builds("b") if b.complete]

    [build] = await poll(built, what="a build of the polled change")
    assert (await coord.get_build("b", build.number)).sourcestamps[0].revision == m1

    # The repository disappears: the poller says so plainly and keeps trying.
    moved = tmp_path / "moved"
    repo.rename(moved)
    line = await coord.process.wait_line(r"poll failed: git fetch failed")
    assert "Traceback" not in coord.process.output()
    assert str(repo) in line.string
    moved.rename(repo)
    [m2] = commit(repo, 1, prefix="n")
    await until_revisions(coord, [(f1, "feature"), (f2, "feature"), (m1, "main"), (m2, "main")])
