"""The SVNPoller's repository port with the ``svn`` command line (``svn info --xml`` and
``svn log --xml -v``); nothing is checked out on the coordinator."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from coordinator.domain.changes.svnpoller import LogEntry, SvnInfo, SVNPoller

_TIMEOUT = 300.0


class SvnCommandError(Exception):
    """An svn command failed; the message is svn's own last line."""


class SvnCli:
    def __init__(self, poller: SVNPoller) -> None:
        self.repourl = poller.repourl
        self.svnbin = poller.svnbin
        self.auth = [*(["--username", poller.svnuser] if poller.svnuser else []),
                     *(["--password", poller.svnpasswd] if poller.svnpasswd else [])]
        self.extra_args = list(poller.extra_args)

    async def _svn(self, *args: str) -> str:
        env = dict(os.environ, LC_ALL="C")
        proc = await asyncio.create_subprocess_exec(
            self.svnbin, *args, "--non-interactive", "--no-auth-cache", *self.auth, *self.extra_args, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), _TIMEOUT)
        except BaseException:  # timeout or cancellation (shutdown): never leave svn running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise SvnCommandError(f"svn {args[0]} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
        return out.decode("utf-8", errors="replace")

    async def info(self) -> SvnInfo:
        entry = ET.fromstring(await self._svn("info", "--xml", self.repourl)).find("entry")
        if entry is None:
            raise SvnCommandError(f"svn info {self.repourl}: no entry in the answer")
        root = unquote(entry.findtext("repository/root", "")).rstrip("/")
        url = unquote(entry.findtext("url", "")).rstrip("/")
        prefix = url[len(root):].strip("/") if url.startswith(root) else ""
        return SvnInfo(youngest=int(entry.get("revision", "0")), prefix=f"{prefix}/" if prefix else "")

    async def log(self, first: int, last: int, limit: int) -> list[LogEntry]:
        # Newest first with a limit (the newest `limit` revisions), then oldest first.
        out = await self._svn("log", "--xml", "-v", "-r", f"{last}:{first}", "--limit", str(limit), self.repourl)
        entries = []
        for e in ET.fromstring(out).iter("logentry"):
            date = e.findtext("date", "")
            when = datetime.datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp() if date else 0.0
            entries.append(LogEntry(
                revision=int(e.get("revision", "0")), author=e.findtext("author", ""), when=when,
                message=e.findtext("msg", ""),
                paths=[(p.text or "").lstrip("/") for p in e.iter("path") if p.text],
            ))
        return sorted(entries, key=lambda x: x.revision)
