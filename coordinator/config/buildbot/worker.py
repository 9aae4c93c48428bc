"""Buildbot's ``worker`` plugin namespace: ``worker.Worker(name, password, ...)``."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, build, different, missing
from coordinator.config.objects import Worker as _Worker

_WORKER = Spec(
    ignored={
        "keepalive_interval": "Gantry workers heartbeat at the coordinator's --heartbeat interval",
        "missing_timeout": "only used with notify_on_missing",
    },
    unsupported={
        "notify_on_missing": "Gantry does not mail about missing workers; watch `gantry workers`",
        "locks": "put the WorkerLock on the builders or steps instead",
        "defaultProperties": "use properties= (the worker's own values win in Buildbot, not here)",
        "machine_name": "Gantry has no machines; use worker labels (`gantry worker start --label`)",
    },
)

# Buildbot's max_builds=None (the default) puts no limit on a worker; the Gantry worker agent has
# its own (`gantry worker start --max-builds`, default 1) and a build runs within both, so "no
# limit here" is a limit the agent always reaches first.
AGENT_DECIDES = 1000


def Worker(name: Any, password: Any = "", max_builds: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
    """Buildbot's worker.Worker, built as Gantry's Worker (same name and password)."""
    if max_builds is None:
        different("worker.Worker without max_builds: no limit in the configuration; the worker "
                  "host's `gantry worker start --max-builds N` (default 1) limits it")
        max_builds = AGENT_DECIDES
    if args:
        raise TypeError("worker.Worker: give the options after max_builds as keywords (properties=...)")
    return build("worker.Worker", _Worker, (name, password), {"max_builds": max_builds, **kwargs}, _WORKER)

_INSTEAD = "Gantry has only long-running workers: start one with `gantry worker start` on the host"


def __getattr__(name: str) -> Any:  # LocalWorker, DockerLatentWorker, EC2LatentWorker, ...
    return missing("worker", name, _INSTEAD)
