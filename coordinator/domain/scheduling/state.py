"""What a scheduler keeps across restarts (stored through SchedulerStateStore).

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
  while no coordinator ran (see `Downstream.catch_up`).

What a scheduler no longer configured leaves behind at start-up: its pending changes and its
Dependent bookkeeping are dropped (logged); its enabled flag and last run are kept by name, as
Buildbot keeps a scheduler's object state by name, so it resumes them if it comes back.
"""

from __future__ import annotations



