"""Buildbot's ``reporters`` plugin namespace: ``MailNotifier`` and ``HttpStatusPush``."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, missing
from notifiers import HttpStatusPush as _HttpStatusPush
from notifiers import MailNotifier as _MailNotifier

_REPORTER = Spec(
    unsupported={
        "generators": "give mode=, builders= and tags= to the reporter itself (one message format)",
        "dumpMailsToLog": "drop it",
        "watchedWorkers": "Gantry does not mail about missing workers",
        "messageFormatterMissingWorker": "Gantry does not mail about missing workers",
    },
)

MailNotifier = adapter("reporters.MailNotifier", _MailNotifier, _REPORTER)
HttpStatusPush = adapter("reporters.HttpStatusPush", _HttpStatusPush, _REPORTER)

_INSTEAD = "Gantry reports by mail (MailNotifier) and HTTP (HttpStatusPush); see docs/notifiers.md"


def __getattr__(name: str) -> Any:  # IRC, GitHubStatusPush, GitLabStatusPush, ...
    return missing("reporters", name, _INSTEAD)
