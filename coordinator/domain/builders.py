"""Builders as configured: a name, the workers it may use, and its ordered steps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from coordinator.domain.steps import BuildStep, caller_location


@dataclass
class Builder:
    name: str
    workers: Sequence[str]
    steps: Sequence[BuildStep]
    description: str = ""
    tags: Sequence[str] = ()
    builddir: str = ""
    properties: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.defined_at = caller_location(3)
        self.workers = list(self.workers)
        self.steps = list(self.steps)
        self.tags = list(self.tags)
        if not self.builddir:
            self.builddir = safe_dirname(self.name) if isinstance(self.name, str) else ""


def safe_dirname(name: str) -> str:
    """A directory name derived from a builder name (Buildbot's builddir default)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
