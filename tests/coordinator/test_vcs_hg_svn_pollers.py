"""HgPoller and SVNPoller against real hg and svn repositories (their command-line ports),
deciding into the same fake sink as the GitPoller's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.domain.changes.hgpoller import HgPoller
from coordinator.domain.changes.svnpoller import SVNPoller, split_file_branches
from coordinator.vcs.hg import HgCli, HgCommandError
from coordinator.vcs.pollers import repository_for
from coordinator.vcs.svn import SvnCli, SvnCommandError
from tests.coordinator.test_domain_change_sources import FakeSink
from tests.coordinator.vcs_repos import HgRepo, SvnRepo

pytestmark = pytest.mark.timeout(120)


async def test_hg_poller_default_branch_then_each_commit_once(tmp_path: Path) -> None:
    repo = HgRepo(tmp_path / "up")
    repo.commit(2, "old")
    poller = HgPoller(str(repo.path), pollInterval=1, project="proj", category="polled")
    hg = repository_for(poller, tmp_path / "data")
    assert isinstance(hg, HgCli)
    sink = FakeSink()
    assert await poller.poll(hg, sink) == 0  # first poll: the heads are recorded, history is not news
    assert sink.states[poller.name] == {"default": repo.node("tip")}

    a, b = repo.commit(2, "a")
    assert await poller.poll(hg, sink) == 2
    assert sink.revs() == [(a, "default"), (b, "default")]
    first = sink.submitted[0]
    assert (first.author, first.committer, first.comments, first.files) == (
        "Jane Doe <jane@example.org>", "Jane Doe <jane@example.org>", "a commit 0\n\nbody 0", ["a0.txt"])
    assert (first.repository, first.project, first.category) == (str(repo.path), "proj", "polled")
    assert first.when == float(repo.hg("log", "-r", a, "--template", "{date|hgdate}").split()[0])
    assert await poller.poll(hg, sink) == 0  # nothing new: nothing submitted twice
    assert len(sink.submitted) == 2

    # A commit on another named branch is not this poller's (branches=None: `default` only).
    repo.hg("branch", "-q", "stable")
    repo.commit(1, "s")
    assert await poller.poll(hg, sink) == 0


async def test_hg_poller_named_branches_and_bookmarks(tmp_path: Path) -> None:
    repo = HgRepo(tmp_path / "up")
    repo.commit(1, "base")
    repo.hg("bookmark", "-q", "feature")
    poller = HgPoller(str(repo.path), branches=True, bookmarks=["feature"], pollInterval=1)
    hg = repository_for(poller, tmp_path / "data")
    sink = FakeSink()
    await poller.poll(hg, sink)

    repo.hg("branch", "-q", "stable")
    [s] = repo.commit(1, "s")  # the active bookmark moves along
    assert await poller.poll(hg, sink) == 2
    # A new branch brings only what no known head has; the bookmark names its own change.
    assert sorted(sink.revs()) == sorted([(s, "stable"), (s, "feature")])
    assert sink.states[poller.name]["bookmark:feature"] == s


async def test_hg_poller_on_a_repository_that_is_gone(tmp_path: Path) -> None:
    poller = HgPoller(str(tmp_path / "nothing-here"), pollInterval=1)
    with pytest.raises(HgCommandError, match="hg clone failed"):
        await poller.poll(repository_for(poller, tmp_path / "data"), FakeSink())


async def test_svn_poller_branches_and_revisions(tmp_path: Path) -> None:
    repo = SvnRepo(tmp_path)
    repo.commit("trunk", "a.txt", "before")
    poller = SVNPoller(repo.url, split_file=split_file_branches, pollInterval=1, project="proj",
                       revlinktmpl="https://svn.example.org/r%s")
    svn = repository_for(poller, tmp_path / "data")
    assert isinstance(svn, SvnCli)
    sink = FakeSink()
    assert await poller.poll(svn, sink) == 0
    assert sink.states[poller.name] == {"revision": "2"}

    r3 = repo.commit("trunk", "b.txt", "add b\n\nwith a body")
    repo.branch("fix")  # copying trunk changes only the directory branches/fix: no file (Buildbot's rule)
    r5 = repo.commit("branches/fix", "c.txt", "fix c")
    assert await poller.poll(svn, sink) == 2
    assert sink.revs() == [(str(r3), "trunk"), (str(r5), "branches/fix")]
    c = sink.submitted[0]
    assert (c.author, c.comments, c.files, c.repository, c.project) == (
        "jane", "add b\n\nwith a body", ["b.txt"], repo.url, "proj")
    assert c.revlink == f"https://svn.example.org/r{r3}" and c.when > 0
    assert sink.submitted[1].files == ["c.txt"]
    assert await poller.poll(svn, sink) == 0
    assert sink.states[poller.name] == {"revision": str(r5)}


async def test_svn_poller_on_trunk_ignores_other_paths_and_keeps_the_newest_histmax(tmp_path: Path) -> None:
    repo = SvnRepo(tmp_path)
    poller = SVNPoller(f"{repo.url}/trunk", histmax=2, pollInterval=1)
    svn = repository_for(poller, tmp_path / "data")
    sink = FakeSink()
    await poller.poll(svn, sink)
    repo.commit("branches", "elsewhere.txt", "not trunk")
    revs = [repo.commit("trunk", f"f{i}.txt", f"trunk {i}") for i in range(3)]
    assert await poller.poll(svn, sink) == 2  # histmax: the newest two of the three
    assert sink.revs() == [(str(revs[1]), "trunk"), (str(revs[2]), "trunk")]
    assert [c.files for c in sink.submitted] == [["f1.txt"], ["f2.txt"]]


async def test_svn_poller_on_a_repository_that_is_gone(tmp_path: Path) -> None:
    poller = SVNPoller((tmp_path / "none").as_uri(), pollInterval=1)
    with pytest.raises(SvnCommandError, match="svn info failed"):
        await poller.poll(repository_for(poller, tmp_path), FakeSink())


def test_poller_options_are_checked() -> None:
    assert SVNPoller("", histmax=0, split_file="trunk").errors == [  # type: ignore[arg-type]
        "repourl must be a Subversion URL (svn://, http(s)://, file://), not ''",
        "split_file must be a function path -> (branch, path) or None, not 'trunk'",
        "histmax must be a whole number >= 1, not 0",
    ]
    assert HgPoller("r", bookmarks=["b"]).errors == []
    assert HgPoller("r", bookmarks=[""], hgbin="").errors == [
        "bookmarks must be a list of bookmark names, not ['']", "hgbin must be the hg command, not ''"]
