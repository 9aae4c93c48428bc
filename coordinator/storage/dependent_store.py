"""A Dependent scheduler's bookkeeping in SQL (migration 7): which upstream buildset each of its
buildsets was made for, and the start-up catch-up of upstream buildsets that finished while no
coordinator ran. See domain/scheduler_state.py."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.model import Buildset
from coordinator.domain.results import Result
from coordinator.storage import codec, schema

t_bs = schema.buildsets
t_state = schema.dependent_state
t_made = schema.dependent_buildsets
_OK = (int(Result.SUCCESS), int(Result.WARNINGS))


def check_not_made(conn: sa.Connection, scheduler: str, upstream_id: int) -> None:
    """In the downstream buildset's transaction, before it is stored."""
    row = conn.execute(
        sa.select(t_made.c.downstream_buildset_id)
        .where(t_made.c.scheduler == scheduler, t_made.c.upstream_buildset_id == upstream_id)
    ).first()
    if row is not None:
        raise AlreadyScheduled(f"scheduler {scheduler!r} already handled upstream buildset {upstream_id}")


def record(conn: sa.Connection, scheduler: str, upstream_id: int, downstream_id: int | None, at: float) -> None:
    """In the downstream buildset's transaction (a concurrent one fails on the primary key)."""
    conn.execute(t_made.insert().values(
        scheduler=scheduler, upstream_buildset_id=upstream_id, downstream_buildset_id=downstream_id, at=at))


def backlog(conn: sa.Connection, scheduler: str, upstream: str) -> list[Buildset]:
    """Move the Dependent's watermark up to its first unresolved upstream buildset (pruning the
    rows below it), then return the upstream buildsets that ended SUCCESS/WARNINGS above it with
    no downstream yet, oldest first. A Dependent seen for the first time starts at the newest
    buildset: it never builds history from before it was configured."""
    since = conn.execute(sa.select(t_state.c.since).where(t_state.c.name == scheduler)).scalar()
    if since is None:
        newest = conn.execute(sa.select(sa.func.max(t_bs.c.id))).scalar() or 0
        conn.execute(t_state.insert().values(name=scheduler, since=newest))
        return []
    made = sa.exists().where(t_made.c.scheduler == scheduler, t_made.c.upstream_buildset_id == t_bs.c.id)
    ok = sa.and_(t_bs.c.complete == sa.true(), t_bs.c.result.in_(_OK))
    mine = sa.and_(t_bs.c.scheduler == upstream, t_bs.c.id > since)
    first_open = conn.execute(
        sa.select(sa.func.min(t_bs.c.id)).where(mine, sa.or_(t_bs.c.complete == sa.false(), sa.and_(ok, ~made)))
    ).scalar()
    if first_open is not None:
        new_since = first_open - 1
    else:
        new_since = conn.execute(sa.select(sa.func.max(t_bs.c.id)).where(mine)).scalar() or since
    if new_since > since:
        conn.execute(t_state.update().where(t_state.c.name == scheduler).values(since=new_since))
        conn.execute(t_made.delete().where(t_made.c.scheduler == scheduler, t_made.c.upstream_buildset_id <= new_since))
    rows = conn.execute(
        sa.select(t_bs).where(t_bs.c.scheduler == upstream, t_bs.c.id > new_since, ok, ~made).order_by(t_bs.c.id)
    )
    return [codec.buildset_from_row(r) for r in rows]


def forget(conn: sa.Connection, dependents: Sequence[str]) -> list[str]:
    """Drop the bookkeeping of Dependents no longer configured (back later, one starts afresh
    from the newest buildset); returns their names."""
    gone = [
        r.name for r in conn.execute(sa.select(t_state.c.name).where(t_state.c.name.not_in(list(dependents))))
    ] if dependents else [r.name for r in conn.execute(sa.select(t_state.c.name))]
    if gone:
        conn.execute(t_made.delete().where(t_made.c.scheduler.in_(gone)))
        conn.execute(t_state.delete().where(t_state.c.name.in_(gone)))
    return gone
