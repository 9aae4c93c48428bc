"""Buildbot's ``HgPoller``: the GitPoller's decisions over a Mercurial repository.

A Mercurial repository has named branches (each with a head: the newest one when a branch has
several) and bookmarks; both are "branches" to the poller, so the same rules apply: the first
poll records the heads, later polls submit what is new since the stored heads, each commit once
(see :mod:`coordinator.domain.changes.sources`). Mercurial itself is reached through the same
`GitRepository` port (implemented with the ``hg`` command line in coordinator/vcs/hg.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.domain.changes.sources import BranchSpec, GitPoller

DEFAULT_BRANCH = "default"


class HgPoller(GitPoller):
    """``HgPoller(repourl, branches=None, branch=None, bookmarks=None, pollInterval=600, ...)``.

    `branches`: names, True for every named branch, a function, or None for ``default``
    (Mercurial's main branch); `branch`: one name. `bookmarks`: bookmark names to poll as well
    (a change's branch is then the bookmark's name). `hgbin`: the ``hg`` command.
    """

    def __init__(
        self,
        repourl: str,
        branches: BranchSpec = None,
        branch: str | None = None,
        bookmarks: Sequence[str] | None = None,
        pollInterval: float = 600,  # noqa: N803 - Buildbot's spelling
        project: str = "",
        category: str | None = None,
        pollAtLaunch: bool = False,  # noqa: N803
        workdir: str | None = None,
        hgbin: str = "hg",
        name: str | None = None,
    ) -> None:
        if branches is None and branch is None and bookmarks:
            branches = []  # only the bookmarks (Buildbot: branches default to none when bookmarks are given)
        super().__init__(
            repourl, branches=branches, pollInterval=pollInterval, project=project, category=category,
            pollAtLaunch=pollAtLaunch, workdir=workdir, name=name if name is not None else f"HgPoller:{repourl}",
            branch=branch,
        )
        self.bookmarks = None if bookmarks is None else list(bookmarks)
        self.hgbin = hgbin
        if self.bookmarks is not None and not all(isinstance(b, str) and b for b in self.bookmarks):
            self.errors.append(f"bookmarks must be a list of bookmark names, not {bookmarks!r}")
        if not isinstance(hgbin, str) or not hgbin:
            self.errors.append(f"hgbin must be the hg command, not {hgbin!r}")

    def _check(self) -> list[str]:
        # An empty branch list is fine here (bookmarks only); the rest as GitPoller checks it.
        errors = super()._check()
        if self.branches == []:
            errors = [e for e in errors if not e.startswith("branches must be")]
        return errors

    def wants(self, branch: str, default: str) -> bool:
        if branch.startswith("bookmark:"):
            return self.bookmarks is not None and branch.removeprefix("bookmark:") in self.bookmarks
        return super().wants(branch, default)

    def branch_name(self, branch: str) -> str:
        return branch.removeprefix("bookmark:")
