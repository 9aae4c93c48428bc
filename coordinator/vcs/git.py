"""The GitPoller's `GitRepository` port, with the git command line: a bare mirror of the remote
in the coordinator's data directory, updated with `git fetch`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from coordinator.domain.changes.sources import Commit, GitPoller

# Unit separators git puts between the fields and records of `git log` (never in messages).
_FORMAT = "--format=%x1e%H%x1f%an <%ae>%x1f%cn <%ce>%x1f%ct%x1f%B%x1f"
_TIMEOUT = 300.0  # one git command; a hung fetch must not stop polling for good


class GitCommandError(Exception):
    """A git command failed; the message is git's own last line."""


class GitCli:
    def __init__(self, repourl: str, mirror: Path) -> None:
        self.repourl = repourl
        self.mirror = mirror

    @classmethod
    def for_poller(cls, poller: GitPoller, data_dir: Path) -> GitCli:
        if poller.workdir:
            workdir = Path(poller.workdir)
            mirror = workdir if workdir.is_absolute() else data_dir / workdir
        else:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", poller.repourl).strip("-")[-40:]
            digest = hashlib.sha256(poller.repourl.encode()).hexdigest()[:12]
            mirror = data_dir / "gitpoller" / f"{slug}-{digest}"
        return cls(poller.repourl, mirror)

    async def _git(self, *args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        proc = await asyncio.create_subprocess_exec(
            "git", "-c", "core.quotepath=off", *args, cwd=cwd or self.mirror, env=env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), _TIMEOUT
            )
        except BaseException:  # timeout or cancellation (shutdown): never leave git running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise GitCommandError(f"git {args[0]} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return out.decode(errors="replace")

    async def fetch(self) -> dict[str, str]:
        if not (self.mirror / "HEAD").exists():
            self.mirror.mkdir(parents=True, exist_ok=True)
            await self._git("init", "--quiet", "--bare", str(self.mirror))
        await self._git("fetch", "--quiet", "--prune", "--force", "--no-tags", self.repourl,
                        "+refs/heads/*:refs/heads/*")
        out = await self._git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        heads = {}
        for line in out.splitlines():
            rev, _, ref = line.partition(" ")
            heads[ref.removeprefix("refs/heads/")] = rev
        return heads

    async def default_branch(self) -> str:
        out = await self._git("ls-remote", "--symref", self.repourl, "HEAD")
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/"):
                return line.split()[1].removeprefix("refs/heads/")
        return ""

    async def commits(self, head: str, exclude: Sequence[str]) -> list[Commit]:
        revs = "\n".join([head, *(f"^{r}" for r in exclude)]) + "\n"
        out = await self._git("log", "--reverse", "--topo-order", "--name-only", "--ignore-missing",
                              _FORMAT, "--stdin", stdin=revs)
        commits = []
        for record in out.split("\x1e")[1:]:
            rev, author, committer, when, body, files = record.split("\x1f", 5)
            commits.append(Commit(
                revision=rev, author=author, committer=committer, comments=body.rstrip("\n"),
                files=[f for f in files.splitlines() if f], when=float(when),
            ))
        return commits
