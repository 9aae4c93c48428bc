"""Reconfiguration without a restart (`gantry reconfig`, SIGHUP): load the configuration file
again, say what it changes, and apply it.

Loading and validating come first, so a bad file (reported as FILE:LINE) changes nothing. The
coordinator applies a plan by swapping what its parts read (the dispatcher's builders, the
registry's workers, the schedulers, ...): running builds keep the builder definition they
started with, connected workers stay connected, and schedulers and pollers find their stored
state by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coordinator.config.diff import KindDiff, Snapshot, diff, fingerprint, snapshot
from coordinator.config.loader import ConfigError, load_config
from coordinator.config.objects import MasterConfig
from coordinator.domain.errors import FailedPrecondition

log = logging.getLogger(__name__)

KINDS = ("builders", "schedulers", "workers", "notifiers", "change sources")
# Settings read once at start-up: a new value is reported, and used after a restart.
RESTART_SETTINGS = ("www", "url", "title", "allow_master_commands")


def sections(cfg: MasterConfig) -> dict[str, Snapshot]:
    """The configuration pictured per kind, by name (as loaded: before anything runs)."""

    def named(objects: Iterable[Any]) -> dict[str, object]:
        return {str(getattr(o, "name", repr(o))): o for o in objects}

    return {
        "builders": snapshot(named(cfg.builders)),
        "schedulers": snapshot(named(cfg.schedulers)),
        "workers": snapshot(named(cfg.workers)),
        "notifiers": snapshot(named(cfg.notifiers)),
        "change sources": snapshot(named(cfg.change_source)),
        "settings": {name: fingerprint(getattr(cfg, name)) for name in (*RESTART_SETTINGS, "secretsProviders")},
    }


@dataclass
class Plan:
    """What a new configuration changes."""

    config_file: str
    changes: dict[str, KindDiff] = field(default_factory=dict)  # by kind, in KINDS order
    notes: list[str] = field(default_factory=list)
    applied: bool = False

    def changed(self, kind: str) -> bool:
        return bool(self.changes.get(kind))

    def summary(self) -> str:
        parts = []
        for kind, d in self.changes.items():
            for what, names in (("added", d.added), ("removed", d.removed), ("changed", d.changed)):
                if names:
                    parts.append(f"{kind} {what}: {', '.join(names)}")
        return "; ".join(parts + self.notes) or "no change"


Apply = Callable[[MasterConfig, Plan], Awaitable[None]]


class Reconfigurer:
    def __init__(self, path: Path, current: MasterConfig, apply: Apply) -> None:
        self.path = path
        self._apply = apply
        self._current = sections(current)
        self._lock = asyncio.Lock()  # one reconfiguration at a time

    async def reconfig(self, dry_run: bool = False) -> Plan:
        """Load the file, plan, and (unless `dry_run`) apply. A bad file raises
        FailedPrecondition listing every problem as FILE:LINE; nothing changes then."""
        async with self._lock:
            try:
                # The user's code runs in a thread: a slow import must not stall the builds.
                cfg = await asyncio.to_thread(load_config, self.path)
            except ConfigError as exc:
                problems = "; ".join(str(p) for p in exc.problems)  # one line: what clients show
                raise FailedPrecondition(f"nothing changed: the configuration has errors: {problems}") from None
            new = sections(cfg)
            plan = Plan(str(self.path))
            for kind in KINDS:
                plan.changes[kind] = diff(self._current[kind], new[kind])
            for name in RESTART_SETTINGS:
                if self._current["settings"][name] != new["settings"][name]:
                    plan.notes.append(f"{name} changed: takes effect after a restart")
            if plan.changes["builders"]:
                plan.notes.append("running builds finish with the definition they started with")
            if dry_run:
                return plan
            await self._apply(cfg, plan)
            self._current = new
            plan.applied = True
            log.info("reconfigured from %s: %s", self.path, plan.summary())
            return plan
