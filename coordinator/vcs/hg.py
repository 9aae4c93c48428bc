"""The HgPoller's repository port with the ``hg`` command line: a clone without a working copy
in the coordinator's data directory, updated with ``hg pull``.

The heads of the named branches (the newest head when a branch has several) and the bookmarks
(as ``bookmark:NAME``) are the poller's "branches"; new commits are found with the revset
``::HEAD - ::(KNOWN...)``, the Mercurial spelling of ``git log HEAD ^KNOWN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from coordinator.domain.changes.hgpoller import DEFAULT_BRANCH, HgPoller
from coordinator.domain.changes.sources import Commit

_TIMEOUT = 300.0  # one hg command; a hung pull must not stop polling for good
_LOG = "\x1e{node}\x1f{author}\x1f{date|hgdate}\x1f{desc}\x1f{join(files, '\x1d')}"


class HgCommandError(Exception):
    """An hg command failed; the message is hg's own last line."""


class HgCli:
    def __init__(self, repourl: str, mirror: Path, hgbin: str = "hg") -> None:
        self.repourl = repourl
        self.mirror = mirror
        self.hgbin = hgbin

    @classmethod
    def for_poller(cls, poller: HgPoller, data_dir: Path) -> HgCli:
        if poller.workdir:
            workdir = Path(poller.workdir)
            mirror = workdir if workdir.is_absolute() else data_dir / workdir
        else:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", poller.repourl).strip("-")[-40:]
            digest = hashlib.sha256(poller.repourl.encode()).hexdigest()[:12]
            mirror = data_dir / "hgpoller" / f"{slug}-{digest}"
        return cls(poller.repourl, mirror, poller.hgbin)

    async def _hg(self, *args: str, cwd: Path | None = None) -> str:
        # HGPLAIN: no user configuration changes the output we parse.
        env = dict(os.environ, HGPLAIN="1", HGENCODING="utf-8", LC_ALL="C")
        proc = await asyncio.create_subprocess_exec(
            self.hgbin, "--noninteractive", *args, cwd=cwd or self.mirror, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _TIMEOUT)
        except BaseException:  # timeout or cancellation (shutdown): never leave hg running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise HgCommandError(f"hg {args[0]} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return out.decode("utf-8", errors="replace")

    async def fetch(self) -> dict[str, str]:
        if not (self.mirror / ".hg").is_dir():
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            await self._hg("clone", "--noupdate", "--quiet", self.repourl, str(self.mirror), cwd=self.mirror.parent)
        else:
            await self._hg("pull", "--quiet", self.repourl)
        # One hg run for both (each hg start costs a Python start-up): the open branch heads
        # and the bookmarked changesets, with their branch and bookmarks.
        heads_revset = "head() and not closed()"
        out = await self._hg("log", "-r", f"{heads_revset} or bookmark()", "--template",
                             "{branch}\x1f{rev}\x1f{node}\x1f{join(bookmarks, '\x1d')}\x1f"
                             f"{{ifcontains(rev, revset('{heads_revset}'), 'h')}}\n")
        heads: dict[str, tuple[int, str]] = {}
        found: dict[str, str] = {}
        for line in out.splitlines():
            branch, rev, node, bookmarks, is_head = line.split("\x1f")
            if is_head and (branch not in heads or int(rev) > heads[branch][0]):
                heads[branch] = (int(rev), node)
            for name in filter(None, bookmarks.split("\x1d")):
                found[f"bookmark:{name}"] = node
        return {**{branch: node for branch, (_, node) in heads.items()}, **found}

    async def default_branch(self) -> str:
        return DEFAULT_BRANCH

    async def commits(self, head: str, exclude: Sequence[str]) -> list[Commit]:
        # present(): a known head that no longer exists (history stripped) excludes nothing.
        known = " + ".join(f"present({r})" for r in exclude)
        # Not only(HEAD, KNOWN): with KNOWN empty, only() excludes every other head instead.
        revset = f"::{head} - ::({known})" if exclude else f"::{head}"
        out = await self._hg("log", "-r", f"sort({revset}, rev)", "--template", _LOG)
        commits = []
        for record in out.split("\x1e")[1:]:
            node, author, date, desc, files = record.split("\x1f", 4)
            commits.append(Commit(
                revision=node, author=author, committer=author, comments=desc,
                files=[f for f in files.split("\x1d") if f], when=float(date.split()[0]),
            ))
        return commits
