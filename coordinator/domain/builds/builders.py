"""Builders as configured: a name, the workers it may use, its ordered steps, and how its
build requests are scheduled (Buildbot's nextWorker, canStartBuild, nextBuild, collapseRequests,
locks), plus the labels a worker must advertise to run its builds."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.location import caller_location
from coordinator.domain.steps.base import BuildStep


@dataclass
class Builder:
    name: str
    workers: Sequence[str]
    steps: Sequence[BuildStep]
    description: str = ""
    tags: Sequence[str] = ()
    builddir: str = ""
    properties: dict[str, object] = field(default_factory=dict)
    # Only connected workers that advertised every one of these labels (Hello.labels,
    # `gantry worker start --label L`) run this builder's builds.
    worker_labels: Sequence[str] = ()
    # nextWorker(builder, workers, request) -> one of `workers` (WorkerSession) or None.
    nextWorker: Callable[..., Any] | None = None
    # canStartBuild(builder, worker, request) -> bool (or an awaitable of one).
    canStartBuild: Callable[..., Any] | None = None
    # nextBuild(builder, requests) -> the request to start next (or None: none now).
    nextBuild: Callable[..., Any] | None = None
    # True: absorb compatible pending requests when one starts; False: never; or a function
    # collapseRequests(builder, req1, req2) -> bool.
    collapseRequests: bool | Callable[..., Any] = True
    # Seconds a build waits for its worker to reconnect after a lost connection before it ends
    # RETRY; None: the worker's missing_timeout.
    missing_timeout: float | None = None
    # MasterLock / WorkerLock (or lock.access(mode)) held for the whole build.
    locks: Sequence[Any] = ()
    # Matrix(...) (scheduling/matrix.py): one builder per combination of its axes; fail_fast
    # stops the other combinations of a buildset when one fails.
    matrix: Any = None
    fail_fast: bool = False

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)
        self.workers = list(self.workers)
        self.steps = list(self.steps)
        self.tags = list(self.tags)
        if isinstance(self.worker_labels, str):
            self.worker_labels = [self.worker_labels]
        if isinstance(self.worker_labels, list | tuple):
            self.worker_labels = list(self.worker_labels)
        if isinstance(self.locks, list | tuple):
            self.locks = list(self.locks)
        if not self.builddir:
            self.builddir = safe_dirname(self.name) if isinstance(self.name, str) else ""


def safe_dirname(name: str) -> str:
    """A directory name derived from a builder name (Buildbot's builddir default)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
