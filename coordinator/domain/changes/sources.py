"""Change sources that poll (Buildbot's GitPoller): the configuration object, the decision of
which commits are new, and the polling loop. Git itself is reached through the `GitRepository`
port (implemented with subprocesses in coordinator/vcs/), storage through
`PolledChangeSink`, so all of this runs in tests with fakes.

Exactly once: the branch heads a poller saw are stored in the same transaction as the changes
it submits. A crash before that commit means the next poll finds the same commits again; after
it, they are behind the stored heads. The first poll of a poller only records the heads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.location import caller_location
from coordinator.domain.model import Change

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Commit:
    revision: str
    author: str
    committer: str
    comments: str
    files: list[str]
    when: float


class GitRepository(Protocol):
    """A local mirror of one remote repository."""

    async def fetch(self) -> dict[str, str]:
        """Update the mirror; returns the remote's branches and their head revisions."""
        ...

    async def default_branch(self) -> str:
        """The branch the remote's HEAD names."""
        ...

    async def commits(self, head: str, exclude: Sequence[str]) -> list[Commit]:
        """Commits reachable from `head` but from none of `exclude`, oldest first."""
        ...


class PolledChangeSink(Protocol):
    async def change_source_state(self, name: str) -> dict[str, str] | None: ...

    async def submit_polled_changes(
        self, name: str, changes: list[Change], state: dict[str, str], previous: dict[str, str] | None
    ) -> None:
        """Store the changes and the new state in one transaction, then tell the schedulers.
        Raises FailedPrecondition, storing nothing, when the stored state is no longer
        `previous` (another coordinator on the same database polled first)."""
        ...


BranchSpec = Sequence[str] | bool | Callable[[str], bool] | None


class GitPoller:
    """``GitPoller(repourl, branches=["main"], pollInterval=600, ...)`` — as in Buildbot.

    `branches`: a list of names, True for every branch, a function `branch -> bool`, or None
    (default) for the remote's default branch (its HEAD).
    """

    def __init__(
        self,
        repourl: str,
        branches: BranchSpec = None,
        pollInterval: float = 600,  # noqa: N803 - Buildbot's spelling
        project: str = "",
        category: str | None = None,
        pollAtLaunch: bool = False,  # noqa: N803
        buildPushesWithNoCommits: bool = False,  # noqa: N803
        workdir: str | None = None,
        name: str | None = None,
        *,
        branch: str | None = None,
    ) -> None:
        self.repourl = repourl
        self.branches: BranchSpec = [branch] if branch is not None and branches is None else branches
        self.poll_interval = pollInterval
        self.project = project
        self.category = category
        self.poll_at_launch = pollAtLaunch
        self.build_pushes_with_no_commits = buildPushesWithNoCommits
        self.workdir = workdir
        self.name = name if name is not None else f"GitPoller:{repourl}"
        self.defined_at = caller_location()
        self.errors: list[str] = self._check()

    def _check(self) -> list[str]:
        errors = []
        if not isinstance(self.repourl, str) or not self.repourl:
            errors.append(f"repourl must be a repository URL or path, not {self.repourl!r}")
        b = self.branches
        if not (b is None or b is True or callable(b)
                or (isinstance(b, list | tuple) and b and all(isinstance(x, str) and x for x in b))):
            errors.append(f"branches must be a list of branch names, True (all) or a function, not {b!r}")
        t = self.poll_interval
        if isinstance(t, bool) or not isinstance(t, int | float) or t <= 0:
            errors.append(f"pollInterval must be seconds > 0, not {t!r}")
        if not isinstance(self.project, str):
            errors.append(f"project must be a string, not {self.project!r}")
        if self.category is not None and not isinstance(self.category, str):
            errors.append(f"category must be a string or None, not {self.category!r}")
        if self.workdir is not None and not isinstance(self.workdir, str):
            errors.append(f"workdir must be a path (string), not {self.workdir!r}")
        if not isinstance(self.name, str) or not self.name:
            errors.append(f"name must be a non-empty string, not {self.name!r}")
        return errors

    def wants(self, branch: str, default: str) -> bool:
        b = self.branches
        if b is None:
            return branch == default
        if b is True:
            return True
        if callable(b):
            return bool(b(branch))
        return branch in b  # type: ignore[operator]

    async def poll(self, git: GitRepository, sink: PolledChangeSink) -> int:
        """One poll: fetch, find what is new since the stored heads, submit it. Returns how many
        changes were submitted."""
        remote = await git.fetch()
        default = await git.default_branch() if self.branches is None else ""
        heads = {b: rev for b, rev in sorted(remote.items()) if self.wants(b, default)}
        last = await sink.change_source_state(self.name)
        if not last:
            # First poll ever (or none of its branches existed until now): remember where the
            # branches are; history is not news.
            if heads != last:
                await sink.submit_polled_changes(self.name, [], heads, last)
            log.info("%s: first poll: %d branch head(s) recorded; new commits become changes",
                     self.name, len(heads))
            return 0
        changes: list[Change] = []
        for branch, head in heads.items():
            old = last.get(branch)
            if old == head:
                continue
            # An updated branch: what is new since its old head. A new branch: only what no
            # known branch has (Buildbot: `git log head ^known...`).
            exclude = [old] if old else sorted(set(last.values()))
            commits = await git.commits(head, exclude)
            if not commits and self.build_pushes_with_no_commits:
                commits = (await git.commits(head, []))[-1:]
            changes += [self._change(c, branch) for c in commits]
        if heads != last:
            await sink.submit_polled_changes(self.name, changes, heads, last)
        return len(changes)

    def branch_name(self, key: str) -> str:
        """The change's branch for a key of the repository's heads (HgPoller: bookmarks)."""
        return key

    def _change(self, c: Commit, branch: str) -> Change:
        return Change(
            author=c.author, committer=c.committer, comments=c.comments, files=list(c.files),
            revision=c.revision, branch=self.branch_name(branch), repository=self.repourl, project=self.project,
            category=self.category or "", when=c.when,
        )


class Poller(Protocol):
    """What the polling loop runs: GitPoller, HgPoller, SVNPoller."""

    name: str
    poll_interval: float
    poll_at_launch: bool

    async def poll(self, repository: Any, sink: PolledChangeSink) -> int: ...


@dataclass
class PollingLoop:
    """Runs one poller every `poll_interval` seconds until closed. A failed poll (repository
    gone, network down) is logged plainly and tried again at the next interval."""

    poller: Poller
    git: Any  # the poller's repository port (GitRepository, or SvnRepository for an SVNPoller)
    sink: PolledChangeSink
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"poller:{self.poller.name}")

    async def _run(self) -> None:
        if not self.poller.poll_at_launch and await self._wait():
            return
        while True:
            try:
                found = await self.poller.poll(self.git, self.sink)
                if found:
                    log.info("%s: %d new change(s)", self.poller.name, found)
            except asyncio.CancelledError:
                raise
            except FailedPrecondition as exc:
                log.info("%s: %s; it submitted those commits", self.poller.name, exc)
            except Exception as exc:  # noqa: BLE001 - any failure: say so and poll again later
                log.warning("%s: poll failed: %s (next try in %gs)", self.poller.name, exc,
                            self.poller.poll_interval)
            if await self._wait():
                return

    async def _wait(self) -> bool:
        """Wait one interval; True when closed meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), self.poller.poll_interval)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except TimeoutError:  # a git command still running: cancelling kills it
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
