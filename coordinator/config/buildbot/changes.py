"""Buildbot's ``changes`` plugin namespace: ``GitPoller``, ``HgPoller``, ``SVNPoller`` and the
SVN ``split_file`` functions."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, different, missing
from coordinator.domain.changes import svnpoller as _svn
from coordinator.domain.changes.hgpoller import HgPoller as _HgPoller
from coordinator.domain.changes.sources import GitPoller as _GitPoller

_CREDENTIALS = "give the coordinator's user access to the repository (ssh config, a credential helper)"
_RANDOM_DELAY = "drop it (polls start at pollInterval)"
_POLLER = Spec(
    ignored={
        "gitbin": "the coordinator runs `git` from its PATH",
        "usetimestamps": "changes carry the commit time",
        "encoding": "commit messages are read as UTF-8",
    },
    unsupported={
        "only_tags": "poll branches, or send tag pushes with a webhook (www change_hook_dialects)",
        "fetch_refspec": "list the branches in branches=",
        "pollRandomDelayMin": _RANDOM_DELAY,
        "pollRandomDelayMax": _RANDOM_DELAY,
        "sshPrivateKey": _CREDENTIALS,
        "sshHostKey": _CREDENTIALS,
        "sshKnownHosts": _CREDENTIALS,
        "auth_credentials": _CREDENTIALS,
        "git_credentials": _CREDENTIALS,
    },
)
_HG = Spec(
    ignored={
        "usetimestamps": "changes carry the commit time",
        "encoding": "commit messages are read as UTF-8",
    },
    unsupported={
        "revlink": "drop it (HgPoller changes have no revision links)",
        "pollRandomDelayMin": _RANDOM_DELAY,
        "pollRandomDelayMax": _RANDOM_DELAY,
    },
)
_SVN = Spec(
    ignored={"cachepath": "the last revision seen is kept in Gantry's database"},
    unsupported={"pollRandomDelayMin": _RANDOM_DELAY, "pollRandomDelayMax": _RANDOM_DELAY},
)

GitPoller = adapter("changes.GitPoller", _GitPoller, _POLLER)
HgPoller = adapter("changes.HgPoller", _HgPoller, _HG)
_SVNPoller = adapter("changes.SVNPoller", _svn.SVNPoller, _SVN)

# Buildbot's own split_file functions, as Gantry's (a native configuration names the same ones).
split_file_alwaystrunk = _svn.split_file_alwaystrunk
split_file_branches = _svn.split_file_branches


def SVNPoller(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's changes.SVNPoller, built as Gantry's SVNPoller (its trunk is named "trunk")."""
    different("changes.SVNPoller: the trunk's changes are on branch 'trunk' (Buildbot: None); "
              "util.ChangeFilter(branch=None) and SingleBranchScheduler(branch=None) mean it")
    return _SVNPoller(*args, **kwargs)


_INSTEAD = ("Gantry polls Git, Mercurial and Subversion: use changes.GitPoller, HgPoller or SVNPoller, "
            "webhooks (c['www'] change_hook_dialects) or `gantry hook install`")


def __getattr__(name: str) -> Any:  # PBChangeSource, GerritChangeSource, P4Source, ...
    return missing("changes", name, _INSTEAD)
