"""Buildbot's ``reporters`` plugin namespace: ``MailNotifier``, ``HttpStatusPush``, the commit
status pushes (GitHub, GitLab, Gitea, Bitbucket Cloud and Server) and the ``IRC`` bot, with
their ``generators=[...]`` folded into the reporter's own options (see generators.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coordinator.config.buildbot import generators as _g
from coordinator.config.buildbot.adapt import Spec, build, different, ignored, missing, unsupported
from coordinator.config.buildbot.log import UNSUPPORTED, Call, native, note
from coordinator.domain.location import caller_location
from coordinator.domain.properties.renderables import Interpolate as _Interpolate
from notifiers import HttpStatusPush as _HttpStatusPush
from notifiers import MailNotifier as _MailNotifier
from notifiers import reporters as _reporters
from notifiers.irc import IRC as _IRC
from notifiers.irc.commands import USAGE as _IRC_COMMANDS

_REPORTER = Spec(
    unsupported={
        "dumpMailsToLog": "drop it",
        "watchedWorkers": "Gantry does not mail about missing workers",
        "messageFormatterMissingWorker": "Gantry does not mail about missing workers",
    },
)
_VERIFY = "Gantry always verifies the server's TLS certificate: add its CA to the coordinator host's trust store"
_STATUS = Spec(
    ignored={"debug": "use verbose=True to log each status sent"},
    unsupported={"verify": _VERIFY},
    harmless={"verify": (None, True)},
)
_GITEA = _STATUS.merged(Spec(
    unsupported={
        "context_pr": "drop it: pull-request builds report under context= too",
        "warningAsSuccess": "Gantry reports WARNINGS to Gitea as 'warning'",
    },
    harmless={"warningAsSuccess": (False,)},
))
_IRC_SPEC = Spec(
    unsupported={
        "allowShutdown": "Gantry's bot has no shutdown command: stop the coordinator on its host",
        "useSASL": "use password= (sent to NickServ as IDENTIFY)",
    },
    harmless={"allowShutdown": (None, False), "useSASL": (False,)},
)
BUILDBOT_CONTEXT = "buildbot/%(prop:buildername)s"  # Buildbot's default status context
_IRC_META = ("", "!", "*")  # Buildbot's authz defaults: every, the dangerous, all commands

BuildStatusGenerator = _g.generator("BuildStatusGenerator")
BuildSetStatusGenerator = _g.generator("BuildSetStatusGenerator")
BuildStartEndStatusGenerator = _g.generator("BuildStartEndStatusGenerator")
BuildRequestGenerator = _g.generator("BuildRequestGenerator")
MessageFormatterRenderable = _g.formatter_renderable
MessageFormatter = unsupported("reporters.MessageFormatter", f"{_g.TEMPLATES}, a status push startDescription= "
                                                             "and endDescription= (docs/reporters.md)")


def _reporter(what: str, cls: Callable[..., Any], spec: Spec, fold: Callable[..., dict[str, Any]]) -> Any:
    def make(*args: Any, **kwargs: Any) -> Any:
        kwargs = fold(what, kwargs, caller_location())
        return build(what, cls, args, kwargs, spec)

    make.__doc__ = f"Buildbot's {what}, built as Gantry's {cls.__name__}."
    return make


MailNotifier = _reporter("reporters.MailNotifier", _MailNotifier, _REPORTER, _g.fold_mail)
HttpStatusPush = _reporter("reporters.HttpStatusPush", _HttpStatusPush, _REPORTER, _g.fold_mail)
GitHubStatusPush = _reporter("reporters.GitHubStatusPush", _reporters.GitHubStatusPush, _STATUS, _g.fold_status)
_GitLabStatusPush = _reporter("reporters.GitLabStatusPush", _reporters.GitLabStatusPush, _STATUS, _g.fold_status)


def GitLabStatusPush(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's reporters.GitLabStatusPush; without context= Buildbot's "buildbot/BUILDER" (Gantry's
    own default is the builder's name), so a pipeline's job names stay what they were."""
    if "context" not in kwargs and len(args) < 2:
        kwargs["context"] = native(_Interpolate(BUILDBOT_CONTEXT), Call("Interpolate", (BUILDBOT_CONTEXT,)))
    return _GitLabStatusPush(*args, **kwargs)


# Not in Buildbot itself: the buildbot-gitea plugin adds it to this namespace.
_GiteaStatusPush = _reporter("reporters.GiteaStatusPush", _reporters.GiteaStatusPush, _GITEA, _g.fold_status)


def GiteaStatusPush(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the plugin's class name
    """The buildbot-gitea plugin's reporters.GiteaStatusPush, built as Gantry's. Its
    startDescription/endDescription are fixed texts there (templates here: `$` kept literal)."""
    for option in ("startDescription", "endDescription"):
        value = kwargs.get(option)
        if isinstance(value, str):
            kwargs[option] = value.replace("$", "$$")
        elif value is not None:
            note(UNSUPPORTED, f"reporters.GiteaStatusPush({option}=...): give a text; Gantry's description "
                              "templates have $number, $result_lower... (docs/reporters.md)")
            del kwargs[option]
    if "context_pr" not in kwargs:
        different("reporters.GiteaStatusPush: pull-request builds report under context= too (the plugin's "
                  "context_pr, buildbot/pull_request/BUILDER, has no counterpart)")
    return _GiteaStatusPush(*args, **kwargs)
BitbucketStatusPush = _reporter("reporters.BitbucketStatusPush", _reporters.BitbucketStatusPush, _STATUS,
                                _g.fold_status)
BitbucketServerStatusPush = _reporter("reporters.BitbucketServerStatusPush", _reporters.BitbucketServerStatusPush,
                                      _STATUS, _g.fold_status)
_IRCAdapter = _reporter("reporters.IRC", _IRC, _IRC_SPEC, lambda what, kwargs, where: kwargs)


def IRC(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's reporters.IRC, built as Gantry's IRC bot (the same options)."""
    authz = kwargs.get("authz")
    if isinstance(authz, Mapping):
        for key in authz:
            for command in key if isinstance(key, tuple | list) else (key,):
                if str(command).lower() not in _IRC_COMMANDS and command not in _IRC_META:
                    ignored(f"reporters.IRC(authz={{{command!r}: ...}}) is ignored: Gantry's bot has no "
                            f"{command!r} command (it has {', '.join(_IRC_COMMANDS)})")
    return _IRCAdapter(*args, **kwargs)


_STATUS_INSTEAD = "Gantry has no such reporter: use reporters.{} (docs/reporters.md)"
_COMMENTS = "Gantry posts no comments; use reporters.{} (a failed check run shows the failing step's log)"
_KNOWN_MISSING = {
    "GitHubCommentPush": _COMMENTS.format("GitHubStatusPush, or GitHubChecksPush in a native configuration"),
    "BitbucketServerPRCommentPush": _COMMENTS.format("BitbucketServerStatusPush"),
    "BitbucketServerCoreAPIStatusPush": _STATUS_INSTEAD.format(
        "BitbucketServerStatusPush (the build-status API; no ref, parent or test results)"),
}
_INSTEAD = ("Gantry reports by mail (MailNotifier), HTTP (HttpStatusPush), commit statuses (GitHub, GitLab, "
            "Gitea, Bitbucket) and IRC; chat (Slack, Discord, Mattermost, Teams) with SlackNotifier... "
            "in a native configuration: docs/reporters.md")


def __getattr__(name: str) -> Any:  # GerritStatusPush, ZulipStatusPush, TelegramBot, ...
    return missing("reporters", name, _KNOWN_MISSING.get(name, _INSTEAD))
