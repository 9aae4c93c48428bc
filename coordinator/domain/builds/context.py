"""The state of one running build: which step runs, whether (and why) the build was stopped,
its properties, source stamps and secrets. BuildRunner has one and shares it with its parts
(step logs, step commands, worker files), which read it; only the runner changes the step and
the stop, through the methods here."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from coordinator.domain.model import Build, PropertyValue, SourceStamp, Step
from coordinator.domain.ports import SecretProvider
from coordinator.domain.properties.secrets import BuildSecrets
from coordinator.domain.workers.sessions import WorkerSession


class BuildContext:
    """What a step reads about its build, and where the build is."""

    def __init__(
        self,
        build: Build,
        session: WorkerSession,
        sourcestamps: Sequence[SourceStamp] = (),
        secrets: Sequence[SecretProvider] = (),
    ) -> None:
        self.build = build
        self._session = session  # read for the worker's advertised info only
        self.sourcestamps: Sequence[SourceStamp] = list(sourcestamps or build.sourcestamps)
        self.properties: dict[str, PropertyValue] = {p.name: p for p in build.properties}
        self.secrets = BuildSecrets(secrets)
        self.step: Step | None = None  # the running step
        self.stopped_reason: str | None = None
        self.stopped = asyncio.Event()  # set by stop(); wakes a wait for a lock
        self._stopped_step: Step | None = None  # the step running when the build was stopped
        self._command_seq = 0

    # -- where the build is (changed by the runner only)
    def begin_step(self, step: Step) -> None:
        self.step = step

    def end_step(self) -> None:
        self.step = None

    def running_step(self, what: str) -> Step:
        """The running step, for an operation (`what`) that only makes sense during one."""
        step = self.step
        assert step is not None, f"{what} only available while a step runs"
        return step

    def stop(self, reason: str) -> str:
        """Remember the first reason the build was stopped, and the step it stopped; that
        first reason is what the running command is told."""
        if self.stopped_reason is None:
            self.stopped_reason = reason or "stopped"
            self._stopped_step = self.step
        self.stopped.set()
        return self.stopped_reason

    @property
    def interrupted(self) -> bool:
        """Whether the running step was stopped. An alwaysRun step that runs after a stop is
        not: as in Buildbot, it runs its commands normally."""
        return self.stopped_reason is not None and self.step is self._stopped_step

    def continue_after(self, command_id: str) -> None:
        """A command started before a coordinator restart: new ids follow it."""
        n = command_id.rsplit("-", 1)[-1]
        if n.isdigit():
            self._command_seq = max(self._command_seq, int(n))

    def command_id(self, step: Step) -> str:
        """A new id for a command or file primitive of `step` (one sequence for the build)."""
        self._command_seq += 1
        return f"{self.build.id}-{step.number}-{self._command_seq}"

    # -- what a step reads
    def get_property(self, name: str, default: Any = None) -> Any:
        p = self.properties.get(name)
        return default if p is None else p.value

    def has_property(self, name: str) -> bool:
        return name in self.properties

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.properties[name] = PropertyValue(name, value, source)

    def final_properties(self) -> list[PropertyValue]:
        """The properties to store with the finished build, secrets hidden."""
        redact = self.secrets.redact_value
        return [PropertyValue(p.name, redact(p.value), p.source) for p in self.properties.values()]

    @property
    def worker_info(self) -> Mapping[str, Any]:
        """What %(worker:KEY)s reads: the worker's name, what it advertised (os, arch, version,
        labels) and its configured properties."""
        info: dict[str, Any] = {"name": self.build.worker, "workername": self.build.worker}
        info.update(self._session.info)
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
