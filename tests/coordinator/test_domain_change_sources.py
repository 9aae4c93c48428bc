"""GitPoller's decisions and polling loop, with a fake git repository and a fake store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from coordinator.domain.changes.sources import Commit, GitPoller, PollingLoop
from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.model import Change


class FakeGit:
    """A commit graph: commits in creation order, each with its parents; branch heads."""

    def __init__(self) -> None:
        self.parents: dict[str, list[str]] = {}
        self.heads: dict[str, str] = {}
        self.default = "main"
        self.fail: Exception | None = None
        self.fetches = 0
        self.fetched = asyncio.Event()

    def commit(self, branch: str, n: int = 1, parent: str | None = None) -> list[str]:
        made = []
        for _ in range(n):
            rev = f"r{len(self.parents):03d}"
            base = parent if parent is not None else self.heads.get(branch)
            self.parents[rev] = [base] if base else []
            self.heads[branch] = rev
            parent = None
            made.append(rev)
        return made

    def _ancestors(self, rev: str) -> set[str]:
        seen, todo = set(), [rev]
        while todo:
            r = todo.pop()
            if r not in seen and r in self.parents:
                seen.add(r)
                todo += self.parents[r]
        return seen

    async def fetch(self) -> dict[str, str]:
        self.fetches += 1
        self.fetched.set()
        if self.fail is not None:
            raise self.fail
        return dict(self.heads)

    async def default_branch(self) -> str:
        return self.default

    async def commits(self, head: str, exclude: Sequence[str]) -> list[Commit]:
        wanted = self._ancestors(head) - set().union(*(self._ancestors(e) for e in exclude))
        return [Commit(r, "A <a@x>", "C <c@x>", f"msg {r}", [f"{r}.txt"], float(i))
                for i, r in enumerate(self.parents) if r in wanted]


class FakeSink:
    def __init__(self) -> None:
        self.states: dict[str, dict[str, str]] = {}
        self.submitted: list[Change] = []
        self.calls = 0
        self.crash_next = False
        self.changed = asyncio.Event()

    async def change_source_state(self, name: str) -> dict[str, str] | None:
        return dict(self.states[name]) if name in self.states else None

    async def submit_polled_changes(
        self, name: str, changes: list[Change], state: dict[str, str], previous: dict[str, str] | None
    ) -> None:
        self.calls += 1
        assert self.states.get(name) == previous
        if self.crash_next:  # the transaction never commits: neither part is stored
            self.crash_next = False
            raise RuntimeError("database went away")
        self.submitted += changes
        self.states[name] = dict(state)
        self.changed.set()

    def revs(self) -> list[tuple[str, str]]:
        return [(c.revision, c.branch) for c in self.submitted]


@pytest.fixture
def git() -> FakeGit:
    g = FakeGit()
    g.commit("main", 3)
    return g


async def test_first_poll_records_the_heads_and_submits_nothing(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("repo", branches=True)
    assert await poller.poll(git, sink) == 0
    assert sink.submitted == [] and sink.states[poller.name] == {"main": "r002"}


async def test_branches_that_appear_after_an_empty_first_poll_are_recorded_too() -> None:
    git, sink = FakeGit(), FakeSink()
    poller = GitPoller("repo", branches=["main"])
    await poller.poll(git, sink)  # an empty repository: nothing to record yet
    assert sink.states[poller.name] == {}
    git.commit("main", 5)
    assert await poller.poll(git, sink) == 0  # its whole history arrives at once: not news
    assert sink.states[poller.name] == {"main": "r004"}
    [new] = git.commit("main", 1)
    assert await poller.poll(git, sink) == 1 and sink.revs() == [(new, "main")]


async def test_new_commits_are_submitted_once_oldest_first_with_the_poller_fields(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("https://x/repo.git", branches=["main"], project="p", category="cat")
    await poller.poll(git, sink)
    new = git.commit("main", 3)
    assert await poller.poll(git, sink) == 3
    assert sink.revs() == [(r, "main") for r in new]
    c = sink.submitted[0]
    assert (c.author, c.committer, c.comments, c.files, c.repository, c.project, c.category, c.when) == (
        "A <a@x>", "C <c@x>", "msg r003", ["r003.txt"], "https://x/repo.git", "p", "cat", 3.0)
    calls = sink.calls
    assert await poller.poll(git, sink) == 0
    assert sink.calls == calls  # nothing moved: nothing written


async def test_a_new_branch_brings_only_commits_no_known_branch_has(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("repo", branches=True)
    await poller.poll(git, sink)
    feature = git.commit("feature", 2, parent="r001")
    git.heads["copy"] = "r000"  # a branch at an old commit: nothing new
    assert await poller.poll(git, sink) == 2
    assert sink.revs() == [(r, "feature") for r in feature]
    assert sink.states[poller.name] == {"main": "r002", "feature": feature[-1], "copy": "r000"}


async def test_a_deleted_branch_is_forgotten_without_a_change(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("repo", branches=True)
    git.commit("old", 1)
    await poller.poll(git, sink)
    del git.heads["old"]
    assert await poller.poll(git, sink) == 0
    assert sink.submitted == [] and sink.states[poller.name] == {"main": "r002"}


async def test_a_failed_commit_loses_nothing_and_repeats_nothing(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("repo", branches=["main"])
    await poller.poll(git, sink)
    first = git.commit("main", 2)
    sink.crash_next = True
    with pytest.raises(RuntimeError):
        await poller.poll(git, sink)
    second = git.commit("main", 1)
    assert await poller.poll(git, sink) == 3
    assert await poller.poll(git, sink) == 0
    assert sink.revs() == [(r, "main") for r in first + second]


async def test_branch_selection(git: FakeGit) -> None:
    git.commit("release/1", 1)
    git.commit("dev", 1)
    for branches, expected in [
        (None, {"main"}),  # the remote's default branch
        (["dev"], {"dev"}),
        (True, {"main", "release/1", "dev"}),
        (lambda b: b.startswith("release/"), {"release/1"}),
    ]:
        sink = FakeSink()
        poller = GitPoller("repo", branches=branches)
        await poller.poll(git, sink)
        assert set(sink.states[poller.name]) == expected, branches


async def test_build_pushes_with_no_commits(git: FakeGit) -> None:
    sink = FakeSink()
    poller = GitPoller("repo", branches=["main"], buildPushesWithNoCommits=True)
    await poller.poll(git, sink)
    git.heads["main"] = "r001"  # reset to a commit already seen
    assert await poller.poll(git, sink) == 1
    assert sink.revs() == [("r001", "main")]


async def test_the_loop_logs_a_failed_poll_and_tries_again(git: FakeGit, caplog: pytest.LogCaptureFixture) -> None:
    sink = FakeSink()
    poller = GitPoller("/gone/repo", branches=["main"], pollInterval=0.01, pollAtLaunch=True)
    git.fail = OSError("git fetch failed: fatal: '/gone/repo' does not appear to be a git repository")
    loop = PollingLoop(poller, git, sink)
    with caplog.at_level(logging.WARNING):
        loop.start()
        try:
            async with asyncio.timeout(30):
                while git.fetches < 2:  # failed twice: it keeps trying
                    git.fetched.clear()
                    await git.fetched.wait()
            git.fail = None
            await asyncio.wait_for(sink.changed.wait(), 30)
        finally:
            await loop.aclose()
    assert sink.states[poller.name] == {"main": "r002"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "GitPoller:/gone/repo: poll failed: git fetch failed" in warnings[0]
    assert all(r.exc_info is None for r in caplog.records)  # plain lines, no tracebacks
    await loop.aclose()  # idempotent


def test_bad_arguments_are_reported() -> None:
    assert GitPoller("repo").errors == []
    bad = GitPoller("", branches="main", pollInterval=0, category=3)  # type: ignore[arg-type]
    text = "\n".join(bad.errors)
    assert "repourl" in text and "branches must be a list" in text
    assert "pollInterval must be seconds > 0" in text and "category" in text


async def test_a_poll_another_coordinator_won_is_not_a_failure(git: FakeGit, caplog: pytest.LogCaptureFixture) -> None:
    class RacingSink(FakeSink):
        async def submit_polled_changes(
            self, name: str, changes: list[Change], state: dict[str, str], previous: dict[str, str] | None
        ) -> None:
            self.changed.set()
            raise FailedPrecondition(f"{name}: its state changed meanwhile (polled elsewhere)")

    sink = RacingSink()
    loop = PollingLoop(GitPoller("repo", pollInterval=30, pollAtLaunch=True), git, sink)
    with caplog.at_level(logging.INFO):
        loop.start()
        try:
            await asyncio.wait_for(sink.changed.wait(), 30)
        finally:
            await loop.aclose()
    assert [r.levelno for r in caplog.records if "polled elsewhere" in r.getMessage()] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
