"""Buildbot's ``worker`` plugin namespace: ``worker.Worker(name, password, ...)``."""

from __future__ import annotations

from typing import Any

from coordinator.config.buildbot.adapt import Spec, adapter, missing
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

Worker = adapter("worker.Worker", _Worker, _WORKER)

_INSTEAD = "Gantry has only long-running workers: start one with `gantry worker start` on the host"


def __getattr__(name: str) -> Any:  # LocalWorker, DockerLatentWorker, EC2LatentWorker, ...
    return missing("worker", name, _INSTEAD)
