"""The repository behind each kind of polling change source (the app picks it here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.domain.changes.hgpoller import HgPoller
from coordinator.domain.changes.svnpoller import SVNPoller
from coordinator.vcs.git import GitCli
from coordinator.vcs.hg import HgCli
from coordinator.vcs.svn import SvnCli


def repository_for(source: Any, data_dir: Path) -> Any:
    if isinstance(source, SVNPoller):
        return SvnCli(source)
    if isinstance(source, HgPoller):
        return HgCli.for_poller(source, data_dir)
    return GitCli.for_poller(source, data_dir)
