"""Buildbot's ``SVNPoller``: new Subversion revisions become changes.

Subversion numbers revisions for the whole repository, so the poller's state is one number:
the youngest revision it has looked at. The first poll records it (history is not news); each
later poll asks for the log after it (at most `histmax` entries: the newest ones), and
submits one change per revision and branch, with the new youngest revision, in one
transaction (see :mod:`coordinator.domain.changes.sources`: each revision exactly once).

The changed paths are made relative to `repourl` (paths outside it are ignored) and handed to
`split_file`, which says which branch a path is on: Buildbot's ``split_file_alwaystrunk``
(the default: every path is on the one branch) and ``split_file_branches`` (``trunk/x`` is on
the trunk, ``branches/NAME/x`` on ``branches/NAME``) are provided; your own function returns
``(branch, path)``, ``{"branch": ..., "path": ...}`` or None (ignore the path). Buildbot names
the trunk None; a Gantry change always names its branch, so the trunk is ``"trunk"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.domain.changes.sources import PolledChangeSink
from coordinator.domain.location import caller_location
from coordinator.domain.model import Change

log = logging.getLogger(__name__)
# A change always names its branch; Buildbot's None (the trunk) is this one.
TRUNK = "trunk"

SplitResult = tuple[str | None, str] | Mapping[str, Any] | None
SplitFile = Callable[[str], SplitResult]


def split_file_alwaystrunk(path: str) -> SplitResult:
    return (None, path)


def split_file_branches(path: str) -> SplitResult:
    """``trunk/x`` -> (None, ``x``); ``branches/NAME/x`` -> (``branches/NAME``, ``x``); else None."""
    parts = path.split("/")
    if parts[0] == "trunk" and len(parts) > 1:
        return (None, "/".join(parts[1:]))
    if parts[0] == "branches" and len(parts) > 2:
        return ("/".join(parts[:2]), "/".join(parts[2:]))
    return None


@dataclass(frozen=True)
class LogEntry:
    revision: int
    author: str
    when: float
    message: str
    paths: list[str]  # changed paths relative to the repository root, without a leading '/'


@dataclass(frozen=True)
class SvnInfo:
    youngest: int  # the repository's newest revision
    prefix: str  # repourl relative to the repository root ("" or "trunk/", with a '/')


class SvnRepository(Protocol):
    async def info(self) -> SvnInfo: ...

    async def log(self, first: int, last: int, limit: int) -> list[LogEntry]:
        """The revisions first..last that touched repourl, oldest first; the newest `limit`."""
        ...


class SVNPoller:
    """``SVNPoller(repourl, split_file=None, svnuser=None, svnpasswd=None, pollInterval=600,
    histmax=100, svnbin="svn", revlinktmpl="", category=None, project="", pollAtLaunch=False,
    extra_args=None)`` — as in Buildbot."""

    def __init__(
        self,
        repourl: str,
        split_file: SplitFile | None = None,
        svnuser: str | None = None,
        svnpasswd: str | None = None,
        pollInterval: float = 600,  # noqa: N803 - Buildbot's spelling
        histmax: int = 100,
        svnbin: str = "svn",
        revlinktmpl: str = "",
        category: str | None = None,
        project: str = "",
        pollAtLaunch: bool = False,  # noqa: N803
        extra_args: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.repourl = repourl.rstrip("/") if isinstance(repourl, str) else repourl
        self.split_file = split_file or split_file_alwaystrunk
        self.svnuser = svnuser
        self.svnpasswd = svnpasswd
        self.poll_interval = pollInterval
        self.histmax = histmax
        self.svnbin = svnbin
        self.revlinktmpl = revlinktmpl
        self.category = category
        self.project = project
        self.poll_at_launch = pollAtLaunch
        self.extra_args = list(extra_args) if isinstance(extra_args, list | tuple) else extra_args or []
        self.name = name if name is not None else f"SVNPoller:{self.repourl}"
        self.defined_at = caller_location()
        self.errors = self._check()

    def _check(self) -> list[str]:
        errors = []
        if not isinstance(self.repourl, str) or not self.repourl:
            errors.append(f"repourl must be a Subversion URL (svn://, http(s)://, file://), not {self.repourl!r}")
        if not callable(self.split_file):
            errors.append(f"split_file must be a function path -> (branch, path) or None, not {self.split_file!r}")
        t = self.poll_interval
        if isinstance(t, bool) or not isinstance(t, int | float) or t <= 0:
            errors.append(f"pollInterval must be seconds > 0, not {t!r}")
        if isinstance(self.histmax, bool) or not isinstance(self.histmax, int) or self.histmax < 1:
            errors.append(f"histmax must be a whole number >= 1, not {self.histmax!r}")
        for option in ("svnuser", "svnpasswd"):
            if getattr(self, option) is not None and not isinstance(getattr(self, option), str):
                errors.append(f"{option} must be a string, not {getattr(self, option)!r}")
        if not isinstance(self.svnbin, str) or not self.svnbin:
            errors.append(f"svnbin must be the svn command, not {self.svnbin!r}")
        if not isinstance(self.revlinktmpl, str):
            errors.append(f"revlinktmpl must be a string such as 'https://svn.example.org/r%s', "
                          f"not {self.revlinktmpl!r}")
        if not isinstance(self.extra_args, list) or not all(isinstance(a, str) for a in self.extra_args):
            errors.append(f"extra_args must be a list of strings, not {self.extra_args!r}")
        if not isinstance(self.project, str):
            errors.append(f"project must be a string, not {self.project!r}")
        if self.category is not None and not isinstance(self.category, str):
            errors.append(f"category must be a string or None, not {self.category!r}")
        return errors

    async def poll(self, svn: SvnRepository, sink: PolledChangeSink) -> int:
        info = await svn.info()
        last = await sink.change_source_state(self.name)
        state = {"revision": str(info.youngest)}
        if not last or "revision" not in last:
            await sink.submit_polled_changes(self.name, [], state, last)
            log.info("%s: first poll: revision %d recorded; new revisions become changes", self.name, info.youngest)
            return 0
        seen = int(last["revision"])
        if info.youngest <= seen:
            return 0
        entries = await svn.log(seen + 1, info.youngest, self.histmax)
        changes = [c for e in entries for c in self._changes(e, info.prefix)]
        await sink.submit_polled_changes(self.name, changes, state, last)
        return len(changes)

    def _changes(self, entry: LogEntry, prefix: str) -> list[Change]:
        """One change per branch the revision touched (Buildbot's SVNPoller does the same)."""
        files: dict[str, list[str]] = {}
        for path in entry.paths:
            if prefix and not (path + "/").startswith(prefix):
                continue
            relative = path[len(prefix):] if prefix else path
            where = self.split_file(relative)
            if where is None:
                continue
            if isinstance(where, Mapping):
                branch, file = where.get("branch"), str(where.get("path", ""))
            else:
                branch, file = where
            files.setdefault(branch or TRUNK, []).append(file)
        return [
            Change(
                author=entry.author, committer=entry.author, comments=entry.message, files=[f for f in fs if f],
                revision=str(entry.revision), branch=branch, repository=self.repourl, project=self.project,
                category=self.category or "", when=entry.when,
                revlink=self.revlinktmpl % entry.revision if "%" in self.revlinktmpl else self.revlinktmpl,
            )
            for branch, fs in files.items()
        ]
