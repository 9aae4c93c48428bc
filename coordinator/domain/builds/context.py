"""What a running step reads about its build: the build's state, properties, worker and
secrets. The base of BuildRunner (the StepContext); its step logs, worker files and the build
loop are in build_logs.py, build_files.py and build_runner.py."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from coordinator.domain.builds.locks import LockAccess, LockRegistry
from coordinator.domain.model import Build, PropertyValue, SourceStamp, Step
from coordinator.domain.ports import ArtifactStore, Clock, HostCommands, Repository, SecretProvider
from coordinator.domain.properties.renderables import render
from coordinator.domain.properties.secrets import BuildSecrets
from coordinator.domain.steps.base import BuildStep
from coordinator.domain.steps.logs import LineObserver, LogWatchers, StepLog
from coordinator.domain.steps.trigger_port import TriggerPort
from coordinator.domain.workers.sessions import WorkerSession


class BuildContext:
    """The state of one running build (set up here for all parts of BuildRunner) and the
    read-only part of the StepContext."""

    def __init__(
        self,
        build: Build,
        steps: Sequence[BuildStep],
        builddir: str,
        session: WorkerSession,
        repo: Repository,
        watchers: LogWatchers,
        clock: Clock,
        sourcestamps: Sequence[SourceStamp] = (),
        artifacts: ArtifactStore | None = None,
        trigger_port: TriggerPort | None = None,
        *,
        secrets: Sequence[SecretProvider] = (),
        host: HostCommands | None = None,
        locks: LockRegistry | None = None,
        build_locks: Sequence[LockAccess] = (),
    ) -> None:
        self.build = build
        self._artifacts = artifacts
        self.trigger_port = trigger_port
        self.locks = locks or LockRegistry()
        self.build_locks = list(build_locks)
        self.waiting_for_lock = ""  # name of the lock the build or its step waits for now
        self._stopped = asyncio.Event()
        self._sourcestamps = list(sourcestamps or build.sourcestamps)
        self.step_defs = list(steps)
        self.builddir = builddir
        self.session = session
        self.repo = repo
        self.watchers = watchers
        self.clock = clock
        self.properties: dict[str, PropertyValue] = {p.name: p for p in build.properties}
        self.stopped_reason: str | None = None
        self._stopped_step: Step | None = None  # the step running when the build was stopped
        self._current_command: str | None = None
        self._current_transfer: str | None = None
        self._current_step: Step | None = None
        self._command_seq = 0
        self._observers: dict[str, list[LineObserver]] = {}
        self._logs: dict[str, StepLog] = {}  # the current step's logs, by name
        self._current_host: Any = None  # HostProcess of a running MasterShellCommand
        self._host = host
        self.secrets = BuildSecrets(secrets)
        self._state: str | None = None  # the current step's own state string, when it set one

    # -- StepContext
    @property
    def builder(self) -> str:
        return self.build.builder

    @property
    def worker(self) -> str:
        return self.build.worker

    @property
    def build_number(self) -> int:
        return self.build.number

    @property
    def interrupted(self) -> bool:
        """Whether the running step was stopped. An alwaysRun step that runs after a stop is
        not: as in Buildbot, it runs its commands normally."""
        return self.stopped_reason is not None and self._current_step is self._stopped_step

    def get_property(self, name: str, default: Any = None) -> Any:
        p = self.properties.get(name)
        return default if p is None else p.value

    def has_property(self, name: str) -> bool:
        return name in self.properties

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.properties[name] = PropertyValue(name, value, source)

    # Buildbot's spellings, for @renderer functions written for Buildbot.
    getProperty = get_property
    hasProperty = has_property

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]:
        return self._sourcestamps

    @property
    def worker_info(self) -> Mapping[str, Any]:
        """What %(worker:KEY)s reads: the worker's name, what it advertised (os, arch, version,
        labels) and its configured properties."""
        info: dict[str, Any] = {"name": self.build.worker, "workername": self.build.worker}
        info.update(self.session.info)
        for p in self.properties.values():
            if p.source == "Worker" and p.name not in ("workername",) and not p.name.startswith("worker_"):
                info.setdefault(p.name, p.value)
        return info

    def get_secret(self, name: str) -> str:
        """The secret's value; remembered, so that it is hidden from logs, state strings and
        stored properties."""
        return self.secrets.get(name)

    def redact(self, text: str) -> str:
        """`text` with every secret value of this build replaced by ``<secret NAME>``."""
        return self.secrets.redact(text)

    def render(self, value: Any) -> Any:
        """`value` with its Property/Interpolate/Transform/renderer parts rendered for this build."""
        return render(value, self)
