"""Buildbot's ``reporters`` plugin namespace: ``MailNotifier`` and ``HttpStatusPush``, with
their ``generators=[BuildStatusGenerator(mode=..., builders=..., tags=...)]`` folded into the
reporter's own ``mode``/``builders``/``tags`` (one generator a reporter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coordinator.config.buildbot.adapt import Spec, build, missing, unsupported
from coordinator.config.buildbot.log import UNSUPPORTED, Unsupported, note
from coordinator.domain.location import caller_location
from notifiers import HttpStatusPush as _HttpStatusPush
from notifiers import MailNotifier as _MailNotifier

_TEMPLATES = "give MailNotifier subject=, body= and html= templates (docs/notifiers.md)"
_REPORTER = Spec(
    unsupported={
        "dumpMailsToLog": "drop it",
        "watchedWorkers": "Gantry does not mail about missing workers",
        "messageFormatterMissingWorker": "Gantry does not mail about missing workers",
    },
)
_GENERATOR = Spec(
    unsupported={
        "message_formatter": _TEMPLATES,
        "subject": _TEMPLATES,
        "schedulers": "use builders= or tags=",
        "branches": "use builders= or tags=",
        "report_new": "drop it (Gantry reports finished builds)",
        "add_logs": "messages link to the build, whose logs are one click away",
        "add_patch": "drop it",
    },
)


@dataclass
class _Generator:
    """A Buildbot report generator, kept until its reporter folds it in."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    defined_at: tuple[str, int] = ("<unknown>", 0)


def _generator(kind: str) -> Any:
    def make(**kwargs: Any) -> _Generator:
        where = caller_location()
        if isinstance(kwargs.get("message_formatter"), Unsupported):
            del kwargs["message_formatter"]  # the MessageFormatter(...) call was reported already
        options = {k: v for k, v in kwargs.items() if k in ("mode", "builders", "tags")}
        for key in sorted(set(kwargs) - set(options)):
            instead = _GENERATOR.unsupported.get(key, f"Gantry's reporters have no {key}")
            note(UNSUPPORTED, f"reporters.{kind}({key}=...): {instead}")
        return _Generator(kind, options, where)

    return make


BuildStatusGenerator = _generator("BuildStatusGenerator")
BuildSetStatusGenerator = _generator("BuildSetStatusGenerator")
MessageFormatter = unsupported("reporters.MessageFormatter", _TEMPLATES)


def _fold(what: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    generators = kwargs.pop("generators", None)
    if generators is None:
        return kwargs
    generators = [g for g in generators if not isinstance(g, Unsupported)]
    if len(generators) != 1 or not isinstance(generators[0], _Generator):
        note(UNSUPPORTED, f"{what}(generators=...): Gantry takes one BuildStatusGenerator or "
                          "BuildSetStatusGenerator a reporter; make one reporter per generator")
        return kwargs
    [gen] = generators
    if gen.kind == "BuildSetStatusGenerator":
        if what != "reporters.MailNotifier":
            note(UNSUPPORTED, f"{what}(generators=[BuildSetStatusGenerator(...)]): use BuildStatusGenerator")
            return kwargs
        kwargs["buildSetSummary"] = True
    return {**kwargs, **gen.options}


def MailNotifier(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's reporters.MailNotifier, built as Gantry's MailNotifier."""
    kwargs = _fold("reporters.MailNotifier", kwargs)
    return build("reporters.MailNotifier", _MailNotifier, args, kwargs, _REPORTER)


def HttpStatusPush(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's reporters.HttpStatusPush, built as Gantry's HttpStatusPush."""
    kwargs = _fold("reporters.HttpStatusPush", kwargs)
    return build("reporters.HttpStatusPush", _HttpStatusPush, args, kwargs, _REPORTER)


_INSTEAD = "Gantry reports by mail (MailNotifier) and HTTP (HttpStatusPush); see docs/notifiers.md"


def __getattr__(name: str) -> Any:  # IRC, GitHubStatusPush, GitLabStatusPush, ...
    return missing("reporters", name, _INSTEAD)
