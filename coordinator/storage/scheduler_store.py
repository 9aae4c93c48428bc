"""Scheduler state in SQL: classified changes, last run, enabled (see domain/scheduler_state).

The functions taking a Connection run inside the caller's transaction (the change's or the
buildset's), which is what makes "built exactly once" hold across a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.model import (
    Change,
    Classified,
    PendingChange,
    SchedulerCommit,
    SchedulerRecord,
)
from coordinator.storage import codec, dependent_store, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_sc = schema.scheduler_changes
t_state = schema.scheduler_state
# Built once, executed with parameters (an expanding IN for the change ids).
_CONSUME = t_sc.delete().where(
    t_sc.c.scheduler == sa.bindparam("b_scheduler"), t_sc.c.change_id.in_(sa.bindparam("b_ids", expanding=True))
)


def insert_classified(conn: sa.Connection, ids: Sequence[int], classified: Sequence[Classified], at: float) -> None:
    """In the change's transaction: one executemany for every scheduler that took a change."""
    if classified:
        conn.execute(t_sc.insert(), [
            {"scheduler": c.scheduler, "change_id": ids[c.index], "gathering": c.key,
             "important": c.important, "classified_at": at}
            for c in classified
        ])


def apply_commit(conn: sa.Connection, commit: SchedulerCommit) -> None:
    """In the buildset's transaction: consume the changes and move last_run forward, or raise
    AlreadyScheduled (rolling the whole transaction back) if either was done already."""
    ids = sorted(set(commit.change_ids))
    if ids:
        res = conn.execute(_CONSUME, {"b_scheduler": commit.scheduler, "b_ids": ids})
        if res.rowcount != len(ids):
            raise AlreadyScheduled(f"changes {ids} were already built by scheduler {commit.scheduler!r}")
    if commit.last_run is not None:
        row = conn.execute(sa.select(t_state.c.last_run).where(t_state.c.name == commit.scheduler)).first()
        if row is None:
            conn.execute(t_state.insert().values(name=commit.scheduler, enabled=True, last_run=commit.last_run))
        else:
            res = conn.execute(
                t_state.update()
                .where(t_state.c.name == commit.scheduler,
                       sa.or_(t_state.c.last_run.is_(None), t_state.c.last_run < commit.last_run))
                .values(last_run=commit.last_run)
            )
            if res.rowcount != 1:
                raise AlreadyScheduled(f"scheduler {commit.scheduler!r} already ran for time {commit.last_run}")


def set_enabled(conn: sa.Connection, name: str, enabled: bool) -> None:
    res = conn.execute(t_state.update().where(t_state.c.name == name).values(enabled=enabled))
    if res.rowcount == 0:
        conn.execute(t_state.insert().values(name=name, enabled=enabled, last_run=None))


def load(conn: sa.Connection, names: Sequence[str]) -> dict[str, SchedulerRecord]:
    """The stored state of the named schedulers (defaults for the ones never stored)."""
    out = {n: SchedulerRecord(name=n) for n in names}
    if not names:
        return out
    for r in conn.execute(sa.select(t_state).where(t_state.c.name.in_(list(names)))):
        out[r.name].enabled = bool(r.enabled)
        out[r.name].last_run = r.last_run
    rows = conn.execute(
        sa.select(t_sc.c.scheduler, t_sc.c.gathering, t_sc.c.important, t_sc.c.classified_at, schema.changes)
        .join(schema.changes, schema.changes.c.id == t_sc.c.change_id)
        .where(t_sc.c.scheduler.in_(list(names)))
        .order_by(t_sc.c.change_id)
    )
    for r in rows:
        change: Change = codec.change_from_row(r)
        out[r.scheduler].pending.append(PendingChange(change, r.gathering, bool(r.important), r.classified_at))
    return out


def drop_unconfigured(conn: sa.Connection, configured: Sequence[str]) -> dict[str, int]:
    """Delete the pending changes of schedulers not in `configured`; returns how many each had.
    Their enabled flag and last run stay (kept by name, as Buildbot keeps object state)."""
    gone = t_sc.c.scheduler.not_in(list(configured)) if configured else sa.true()
    per_scheduler = sa.select(t_sc.c.scheduler, sa.func.count().label("n")).where(gone).group_by(t_sc.c.scheduler)
    counts = {r.scheduler: int(r.n) for r in conn.execute(per_scheduler)}
    if counts:
        conn.execute(t_sc.delete().where(t_sc.c.scheduler.in_(list(counts))))
    return counts


class SqlSchedulers:
    """The schedulers' stored state (changes they classified, last run, enabled) and the
    Dependent schedulers' bookkeeping."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]:
        return await self.db.read(lambda c: load(c, names))

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None:
        await self.db.write(lambda tx: set_enabled(tx.conn, name, enabled))

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        def op(tx: Tx) -> dict[str, int]:
            dropped = drop_unconfigured(tx.conn, configured)
            for name in dependent_store.forget(tx.conn, dependents):
                dropped.setdefault(name, 0)
            return dropped

        return await self.db.write(op)
