"""Buildbot's ``steps`` plugin namespace: the steps Gantry has (with the Git, Mercurial and SVN
source steps), with Buildbot's options."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, build, missing
from coordinator.config.buildbot.log import UNSUPPORTED, Unsupported, note
from coordinator.domain.steps import base as _base
from coordinator.domain.steps import junit as _junit
from coordinator.domain.steps import master as _master
from coordinator.domain.steps import mercurial as _mercurial
from coordinator.domain.steps import shell as _shell
from coordinator.domain.steps import source as _source
from coordinator.domain.steps import svn as _svn
from coordinator.domain.steps import transfer as _transfer
from coordinator.domain.steps import trigger as _trigger

_STEP = Spec(
    ignored={
        "logEnviron": "Gantry does not write the environment into the log",
        "usePTY": "commands run without a terminal",
        "descriptionSuffix": "descriptions are shown as given",
        "progressMetrics": "Gantry estimates from past builds",
        "updateBuildSummaryPolicy": "the build summary lists failed steps",
    },
    unsupported={
        "logfiles": "upload the files with steps.FileUpload after the command",
        "lazylogfiles": "upload the files with steps.FileUpload after the command",
        "interruptSignal": "a stopped command gets SIGTERM, then SIGKILL",
        "sigtermTime": "a stopped command gets SIGTERM, then SIGKILL",
        "initialStdin": "pass the input in the command (e.g. a shell here-document)",
        "want_stdout": "the whole output is kept in the stdio log",
        "want_stderr": "the whole output is kept in the stdio log",
    },
)
_GIT = _STEP.merged(Spec(
    ignored={"progress": "git's progress output is not shown"},
    unsupported={
        "clobberOnFailure": "use mode='full', method='clobber'",
        "getDescription": "run `git describe` with steps.SetPropertyFromCommand",
        "config": "set git options in the worker user's ~/.gitconfig",
        "origin": "the remote is always named origin",
        "sshPrivateKey": "give the worker's user an ssh key for the repository",
        "sshHostKey": "add the host to the worker user's ~/.ssh/known_hosts",
        "sshKnownHosts": "add the host to the worker user's ~/.ssh/known_hosts",
        "retry": "use retryFetch=True",
        "reference": "drop it (no reference repositories)",
        "filters": "drop it (no partial clones)",
    },
))

_SOURCE = _STEP.merged(Spec(
    unsupported={
        "retry": "drop it (a failed checkout fails the step; force the build again)",
        "env": "set the variables in the worker's environment",
    },
))
_HG = _SOURCE
_SVN = _SOURCE.merged(Spec(
    unsupported={
        "keep_on_purge": "drop it (method='clean' removes every unversioned file)",
        "depth": "drop it (the whole tree is checked out)",
    },
))
_SVN_METHODS = {"copy": "use method='clobber' (a new checkout) or 'fresh'",
                "export": "use method='clobber' (a new checkout) or 'fresh'"}

ShellCommand = adapter("steps.ShellCommand", _base.ShellCommand, _STEP)
Compile = adapter("steps.Compile", _shell.Compile, _STEP)
Test = adapter("steps.Test", _junit.Test, _STEP)
WarningCountingShellCommand = adapter("steps.WarningCountingShellCommand", _shell.WarningCountingShellCommand, _STEP)
SetPropertyFromCommand = adapter("steps.SetPropertyFromCommand", _shell.SetPropertyFromCommand, _STEP)
ShellSequence = adapter("steps.ShellSequence", _shell.ShellSequence, _STEP)
Git = adapter("steps.Git", _source.Git, _GIT)
Mercurial = adapter("steps.Mercurial", _mercurial.Mercurial, _HG)
_SVNStep = adapter("steps.SVN", _svn.SVN, _SVN)
Trigger = adapter("steps.Trigger", _trigger.Trigger, _STEP)
FileUpload = adapter("steps.FileUpload", _transfer.FileUpload, _STEP)
DirectoryUpload = adapter("steps.DirectoryUpload", _transfer.DirectoryUpload, _STEP)
FileDownload = adapter("steps.FileDownload", _transfer.FileDownload, _STEP)
MasterShellCommand = adapter("steps.MasterShellCommand", _master.MasterShellCommand, _STEP)


def Configure(command: Any = ("./configure",), **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's name
    """Buildbot's Configure: a ShellCommand named "configure" running ./configure."""
    kwargs = {"name": "configure", **kwargs, "command": command}
    return build("steps.Configure", _base.ShellCommand, (), kwargs, _STEP)


def SVN(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's steps.SVN, built as Gantry's SVN (without the copy and export methods)."""
    method = kwargs.get("method")
    if isinstance(method, str) and method in _SVN_METHODS:
        note(UNSUPPORTED, f"steps.SVN(method={method!r}): {_SVN_METHODS[method]}")
        return Unsupported("steps.SVN")
    return _SVNStep(*args, **kwargs)


_INSTEAD = "run the tool with steps.ShellCommand (or subclass BuildStep, see docs/custom_step.md)"


def __getattr__(name: str) -> Any:  # CVS, Bzr, P4, PyFlakes, Sphinx, RemoveDirectory, ...
    return missing("steps", name, _INSTEAD)
