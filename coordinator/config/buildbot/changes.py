"""Buildbot's ``changes`` plugin namespace: ``changes.GitPoller(...)``."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, missing
from coordinator.domain.changes.sources import GitPoller as _GitPoller

_CREDENTIALS = "give the coordinator's user access to the repository (ssh config, a credential helper)"
_POLLER = Spec(
    ignored={
        "gitbin": "the coordinator runs `git` from its PATH",
        "usetimestamps": "changes carry the commit time",
        "encoding": "commit messages are read as UTF-8",
    },
    unsupported={
        "only_tags": "poll branches, or send tag pushes with a webhook (www change_hook_dialects)",
        "fetch_refspec": "list the branches in branches=",
        "pollRandomDelayMin": "drop it (polls start at pollInterval)",
        "pollRandomDelayMax": "drop it (polls start at pollInterval)",
        "sshPrivateKey": _CREDENTIALS,
        "sshHostKey": _CREDENTIALS,
        "sshKnownHosts": _CREDENTIALS,
        "auth_credentials": _CREDENTIALS,
        "git_credentials": _CREDENTIALS,
    },
)

GitPoller = adapter("changes.GitPoller", _GitPoller, _POLLER)

_INSTEAD = ("Gantry polls only Git: use changes.GitPoller, webhooks (c['www'] change_hook_dialects) "
            "or `gantry hook install`")


def __getattr__(name: str) -> Any:  # PBChangeSource, HgPoller, SVNPoller, GerritChangeSource, ...
    return missing("changes", name, _INSTEAD)
