"""Buildbot's ``schedulers`` plugin namespace, with Buildbot's keywords (builderNames,
treeStableTimer, change_filter, ...)."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, missing
from coordinator.config.buildbot.util import default_branch
from coordinator.domain.scheduling import force as _force
from coordinator.domain.scheduling import schedulers as _schedulers
from coordinator.domain.scheduling import timed as _timed
from coordinator.domain.scheduling import triggerable as _triggerable

_COMMON = Spec(
    ignored={"reason": "Gantry records the scheduler that started a build, not a reason string"},
    unsupported={
        "createAbsoluteSourceStamps": "drop it; each buildset carries the sources of its own changes",
    },
)
_CHANGE = _COMMON.merged(Spec(rename={"builderNames": "builders", "treeStableTimer": "tree_stable_timer"}))
_FORCE = _COMMON.merged(Spec(
    ignored={
        "buttonName": "`gantry force` and the web page have their own wording",
        "label": "`gantry force` and the web page have their own wording",
        "username": "the forcing user comes from `gantry force --owner`",
    },
))

_SingleBranchScheduler = adapter("schedulers.SingleBranchScheduler", _schedulers.SingleBranchScheduler, _CHANGE)


def SingleBranchScheduler(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - Buildbot's class name
    """Buildbot's SingleBranchScheduler; its branch=None is the default branch (see util)."""
    if "branch" in kwargs:
        kwargs["branch"] = default_branch("schedulers.SingleBranchScheduler", kwargs["branch"])
    return _SingleBranchScheduler(*args, **kwargs)


AnyBranchScheduler = adapter("schedulers.AnyBranchScheduler", _schedulers.AnyBranchScheduler, _CHANGE)
ForceScheduler = adapter("schedulers.ForceScheduler", _force.ForceScheduler, _FORCE)
Periodic = adapter("schedulers.Periodic", _timed.Periodic, _COMMON)
Nightly = adapter("schedulers.Nightly", _timed.Nightly, _COMMON)
Triggerable = adapter("schedulers.Triggerable", _triggerable.Triggerable, _COMMON)
Dependent = adapter("schedulers.Dependent", _triggerable.Dependent, _COMMON)

_INSTEAD = ("Gantry has SingleBranchScheduler, AnyBranchScheduler, ForceScheduler, Periodic, Nightly, "
            "Triggerable and Dependent; `gantry force` replaces try jobs")


def __getattr__(name: str) -> Any:  # Try_Userpass, Try_Jobdir, NightlyTriggerable, ...
    return missing("schedulers", name, _INSTEAD)
