"""What a scheduler keeps across restarts (stored by the Repository).

- Classified changes: a change a scheduler accepted and has not built yet (waiting under a
  tree-stable timer, or for a Nightly with onlyIfChanged). They are written in the change's own
  transaction and deleted in the transaction that submits the buildset built from them, so a
  change is built exactly once even if the coordinator stops in between.
- The last run of a timed scheduler (Periodic, Nightly), moved forward in the transaction of the
  buildset, so a scheduled time never fires twice.
- Whether the scheduler is enabled (set at run time through the API).
- For a Dependent: which upstream buildset each of its buildsets was made for (recorded in the
  downstream buildset's transaction, so it is made at most once), and up to which upstream
  buildset everything is resolved, so at start-up it makes the ones whose upstream finished
  while no coordinator ran (see `CoordinatorService.start_schedulers`).

What a scheduler no longer configured leaves behind at start-up: its pending changes and its
Dependent bookkeeping are dropped (logged); its enabled flag and last run are kept by name, as
Buildbot keeps a scheduler's object state by name, so it resumes them if it comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.model import Change


@dataclass(frozen=True)
class Classified:
    """Scheduler `scheduler` accepted change number `index` of a submission."""

    index: int
    scheduler: str
    key: str  # the gathering (AnyBranchScheduler: codebase + branch; else "")
    important: bool


@dataclass
class PendingChange:
    change: Change
    key: str
    important: bool
    classified_at: float


@dataclass
class SchedulerCommit:
    """Committed together with a scheduler's buildset: consume these classified changes and/or
    move `last_run` forward, and/or record that this is the Dependent's buildset for upstream
    buildset `upstream_buildset_id` (with no buildset: that the Dependent skipped it). If any
    change was already consumed, last_run is not older, or the upstream buildset already has its
    downstream, the whole transaction (buildset included) is refused with AlreadyScheduled."""

    scheduler: str
    change_ids: list[int] = field(default_factory=list)
    last_run: float | None = None
    upstream_buildset_id: int = 0


@dataclass
class SchedulerRecord:
    """A scheduler's stored state as loaded at start (or when it is enabled again)."""

    name: str
    enabled: bool = True
    last_run: float | None = None
    pending: list[PendingChange] = field(default_factory=list)


class AlreadyScheduled(FailedPrecondition):
    """The changes were already built, or this scheduled time already ran (another coordinator
    or an earlier run got there first)."""
