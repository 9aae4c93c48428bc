"""Buildbot's ``util`` plugin namespace: ``BuildFactory``, ``BuilderConfig``, ``ChangeFilter``,
the renderables, locks, force-scheduler parameters and the result constants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, build, different, ignored, missing
from coordinator.config.buildbot.log import UNSUPPORTED, Call, Unsupported, native, native_call, note
from coordinator.config.buildbot.webauth import written
from coordinator.config.secrets import SecretInAFile as _SecretInAFile
from coordinator.domain.builds import locks as _locks
from coordinator.domain.builds.builders import Builder as _Builder
from coordinator.domain.changes.filters import ChangeFilter as _ChangeFilter
from coordinator.domain.changes.svnpoller import TRUNK
from coordinator.domain.properties import renderables as _r
from coordinator.domain.results import Result
from coordinator.domain.scheduling import force as _force
from coordinator.domain.steps.shell import ShellArg as _ShellArg

SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = list(Result)
renderer = _r.renderer  # decorates a function: kept as is (a native config keeps the function)


class BuildFactory:
    """Buildbot's BuildFactory: the ordered steps a builder runs (``addStep``/``addSteps``)."""

    def __init__(self, steps: Iterable[Any] | None = None) -> None:
        self.steps: list[Any] = list(steps or [])
        self._workdir: Any = None

    def addStep(self, step: Any) -> None:  # noqa: N802 - Buildbot's method name
        self.steps.append(step)

    def addSteps(self, steps: Iterable[Any], withSecrets: Any = None) -> None:  # noqa: N802, N803
        if withSecrets:
            note(UNSUPPORTED, "BuildFactory.addSteps(withSecrets=...): render Secret('name') in the "
                              "steps' commands or env instead (values are masked in logs)")
        self.steps.extend(steps)

    @property
    def workdir(self) -> Any:
        return self._workdir

    @workdir.setter
    def workdir(self, value: Any) -> None:
        note(UNSUPPORTED, "BuildFactory.workdir: give each step workdir= instead")
        self._workdir = value

    @property
    def useProgress(self) -> bool:  # noqa: N802
        return True

    @useProgress.setter
    def useProgress(self, value: bool) -> None:  # noqa: N802
        ignored("BuildFactory.useProgress is ignored: Gantry always estimates from past builds")


_BUILDER = Spec(
    rename={"workerbuilddir": "builddir"},
    ignored={"description_format": "descriptions are shown as plain text"},
    unsupported={
        "env": "give each step env= (a dict shared by the steps works)",
        "defaultProperties": "use properties=",
        "project": "Gantry has no projects; use tags=",
        "do_build_if": "use canStartBuild= or a scheduler's change_filter",
    },
)


def BuilderConfig(  # noqa: N802 - Buildbot's class name
    name: Any = None,
    workername: Any = None,
    workernames: Any = None,
    factory: Any = None,
    **kwargs: Any,
) -> Any:
    """Buildbot's BuilderConfig, built as a Gantry Builder (the factory's steps, in order)."""
    if factory is None:
        factory = BuildFactory()
    if not isinstance(factory, BuildFactory):
        raise TypeError(f"BuilderConfig {name!r}: factory= must be a util.BuildFactory(), not {factory!r}")
    workers = list(workernames or []) + ([workername] if workername else [])
    if "builddir" in kwargs and "workerbuilddir" in kwargs:
        # Buildbot's builddir is then only the master's copy; the worker's is workerbuilddir.
        ignored("util.BuilderConfig(builddir=...) is ignored: Gantry keeps no builder directory on "
                "the coordinator; workerbuilddir is the worker's directory")
        del kwargs["builddir"]
    kwargs = {"name": name, "workers": workers, "steps": _unique_names(_supported(factory.steps)), **kwargs}
    return build("util.BuilderConfig", _Builder, (), kwargs, _BUILDER, native_name="Builder")


def _supported(steps: list[Any]) -> list[Any]:
    return [s for s in steps if not isinstance(s, Unsupported)]  # each was reported where written


def _unique_names(steps: list[Any]) -> list[Any]:
    """Buildbot renames a builder's repeated step names ``trigger``, ``trigger_1``, ...; Gantry
    wants them distinct, so do the same (and write the name into the native configuration)."""
    seen: set[str] = set()
    for step in steps:
        name = getattr(step, "name", None)
        if not isinstance(name, str):
            continue
        unique, n = name, 0
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        if unique != name:
            step.name = unique
            call = native_call(step)
            if call is not None:
                native(step, Call(call.name, call.args, {**call.kwargs, "name": unique}))
        seen.add(unique)
    return list(steps)


_ChangeFilterAdapter = adapter("util.ChangeFilter", _ChangeFilter)


def default_branch(what: str, value: Any) -> Any:
    """Buildbot's branch None is the default branch (an SVNPoller's trunk); a Gantry change always
    names its branch, the trunk being "trunk". Without a branch= Buildbot does not filter."""
    if value is None:
        different(f"{what}(branch=None): the default branch, 'trunk' in Gantry (SVNPoller's trunk)")
        return TRUNK
    if isinstance(value, list | tuple) and None in value:
        different(f"{what}(branch=[None, ...]): None is the default branch, 'trunk' in Gantry")
        return [TRUNK if v is None else v for v in value]
    return value


def ChangeFilter(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's util.ChangeFilter, built as Gantry's ChangeFilter."""
    if "branch" in kwargs:
        kwargs["branch"] = default_branch("util.ChangeFilter", kwargs["branch"])
    return _ChangeFilterAdapter(*args, **kwargs)


Interpolate = adapter("util.Interpolate", _r.Interpolate)
Property = adapter("util.Property", _r.Property)
Secret = adapter("util.Secret", _r.Secret)
Transform = adapter("util.Transform", _r.Transform)
ShellArg = adapter("util.ShellArg", _ShellArg)
MasterLock = adapter("util.MasterLock", _locks.MasterLock)
WorkerLock = adapter("util.WorkerLock", _locks.WorkerLock)
SecretInAFile = adapter("util.SecretInAFile", _SecretInAFile)
StringParameter = adapter("util.StringParameter", _force.StringParameter)
TextParameter = adapter("util.TextParameter", _force.TextParameter)
IntParameter = adapter("util.IntParameter", _force.IntParameter)
BooleanParameter = adapter("util.BooleanParameter", _force.BooleanParameter)
ChoiceStringParameter = adapter("util.ChoiceStringParameter", _force.ChoiceStringParameter)
FixedParameter = adapter("util.FixedParameter", _force.FixedParameter)
CodebaseParameter = adapter("util.CodebaseParameter", _force.CodebaseParameter)

# After default_branch, which they use.
from coordinator.config.buildbot.cancellers import FailingBuildsetCanceller as FailingBuildsetCanceller  # noqa: E402
from coordinator.config.buildbot.cancellers import OldBuildCanceller as OldBuildCanceller  # noqa: E402
from coordinator.config.buildbot.cancellers import SourceStampFilter as SourceStampFilter  # noqa: E402

_INSTEAD = "Gantry has no counterpart; see docs/buildbot-migration.md"
# c['www']['auth'] / ['authz'] values: recorded, translated (or reported) by the master.
_WEB_AUTH = re.compile(r"^(Authz|\w*Auth|\w*EndpointMatcher|RolesFrom\w+)$")


def __getattr__(name: str) -> Any:  # Authz, UserPasswordAuth, BuildStatusGenerator, ...
    if _WEB_AUTH.match(name):
        return written(name)
    return missing("util", name, _INSTEAD)
