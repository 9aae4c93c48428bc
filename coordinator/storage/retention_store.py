"""Deleting what retention says is past its horizon, in bounded batches, and giving the space back
(SQLite: incremental vacuum; PostgreSQL: VACUUM of the tables touched). Events go as a prefix by
id, and `event_retention.pruned_through` records how far (what a resuming stream checks)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3

import sqlalchemy as sa

from coordinator.domain.model import DELETED_LOG
from coordinator.domain.ports import Expiry
from coordinator.domain.results import Result
from coordinator.storage import journal_store, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_builds, t_steps, t_logs, t_chunks, t_artifacts = (
    schema.builds,
    schema.steps,
    schema.logs,
    schema.logchunks,
    schema.artifacts,
)
t_events = schema.events
FAILING = (int(Result.FAILURE), int(Result.EXCEPTION))
TABLES = ("logchunks", "logs", "artifacts", "test_cases", "steps", "builds", "events")  # what the janitor deletes from
VACUUM_PAGES = 500  # SQLite pages freed per step (~2 MiB): each step is a short write


def _builds_of(expiry: Expiry) -> sa.Select[tuple[int]]:
    """Ids of the expired builds (finished before the horizon; failing or not)."""
    failing = t_builds.c.result.in_(FAILING)
    return sa.select(t_builds.c.id).where(
        t_builds.c.builder == expiry.builder,
        t_builds.c.finished_at.is_not(None),
        t_builds.c.finished_at < expiry.before,
        failing if expiry.failed else sa.not_(failing),
    )


def _logs_of(builds: sa.Select[tuple[int]]) -> sa.Select[tuple[int]]:
    return sa.select(t_logs.c.id).join(t_steps, t_steps.c.id == t_logs.c.step_id).where(t_steps.c.build_id.in_(builds))


class SqlRetention:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sqlite = db.engine.dialect.name == "sqlite"

    async def count_expired(self, expiry: Expiry) -> int:
        builds = _builds_of(expiry)
        if expiry.kind == "builds":
            query = sa.select(sa.func.count()).select_from(builds.subquery())
        elif expiry.kind == "logs":
            query = sa.select(sa.func.count()).select_from(
                _logs_of(builds).where(t_logs.c.type != DELETED_LOG).subquery()
            )
        else:
            query = sa.select(sa.func.count()).where(t_artifacts.c.build_id.in_(builds))
        return await self.db.read(lambda c: int(c.execute(query).scalar() or 0))

    async def expire(self, expiry: Expiry, limit: int) -> tuple[int, list[tuple[int, str]]]:
        def op(tx: Tx) -> tuple[int, list[tuple[int, str]]]:
            c = tx.conn
            builds = _builds_of(expiry)
            if expiry.kind == "logs":
                ids = list(c.execute(_logs_of(builds).where(t_logs.c.type != DELETED_LOG).limit(limit)).scalars())
                if ids:
                    c.execute(t_chunks.delete().where(t_chunks.c.log_id.in_(ids)))
                    c.execute(t_logs.update().where(t_logs.c.id.in_(ids)).values(type=DELETED_LOG))
                return len(ids), []
            if expiry.kind == "artifacts":
                rows = c.execute(
                    sa.select(t_artifacts.c.id, t_builds.c.number, t_artifacts.c.name)
                    .join(t_builds, t_builds.c.id == t_artifacts.c.build_id)
                    .where(t_artifacts.c.build_id.in_(builds))
                    .limit(limit)
                ).all()
                if rows:
                    c.execute(t_artifacts.delete().where(t_artifacts.c.id.in_([r.id for r in rows])))
                return len(rows), [(r.number, r.name) for r in rows]
            # Whole builds: their log chunks, logs, artifacts, test cases and steps, then the builds.
            picked = c.execute(
                sa.select(t_builds.c.id, t_builds.c.number).where(t_builds.c.id.in_(builds.limit(limit)))
            ).all()
            if not picked:
                return 0, []
            ids = [r.id for r in picked]
            numbers = {r.id: r.number for r in picked}
            files = [
                (numbers[r.build_id], r.name)
                for r in c.execute(
                    sa.select(t_artifacts.c.build_id, t_artifacts.c.name).where(t_artifacts.c.build_id.in_(ids))
                )
            ]
            steps = sa.select(t_steps.c.id).where(t_steps.c.build_id.in_(ids))
            logs = sa.select(t_logs.c.id).where(t_logs.c.step_id.in_(steps))
            c.execute(t_chunks.delete().where(t_chunks.c.log_id.in_(logs)))
            c.execute(t_logs.delete().where(t_logs.c.step_id.in_(steps)))
            c.execute(t_artifacts.delete().where(t_artifacts.c.build_id.in_(ids)))
            c.execute(schema.test_cases.delete().where(schema.test_cases.c.build_id.in_(ids)))
            journal_store.delete_for_builds(c, ids)
            c.execute(t_steps.delete().where(t_steps.c.build_id.in_(ids)))
            c.execute(schema.build_branches.delete().where(schema.build_branches.c.build_id.in_(ids)))
            c.execute(t_builds.delete().where(t_builds.c.id.in_(ids)))
            return len(ids), files

        return await self.db.write(op)

    # -- events
    async def event_bounds(self) -> tuple[int, int | None]:
        def q(c: sa.Connection) -> tuple[int, int | None]:
            last = int(c.execute(sa.select(sa.func.max(t_events.c.id))).scalar() or 0)
            cursor = c.execute(sa.select(sa.func.min(schema.notifier_state.c.last_event_id))).scalar()
            return last, None if cursor is None else int(cursor)

        return await self.db.read(q)

    @staticmethod
    def _expired_events(before: float, keep_from: int) -> sa.Select[tuple[int]]:
        # The prefix older than `before`: below the first event at or after it, and below keep_from.
        newer = sa.select(sa.func.min(t_events.c.id)).where(t_events.c.at >= before).scalar_subquery()
        return sa.select(t_events.c.id).where(
            t_events.c.id < keep_from, t_events.c.id < sa.func.coalesce(newer, keep_from)
        )

    async def count_expired_events(self, before: float, keep_from: int) -> int:
        query = sa.select(sa.func.count()).select_from(self._expired_events(before, keep_from).subquery())
        return await self.db.read(lambda c: int(c.execute(query).scalar() or 0))

    async def expire_events(self, before: float, keep_from: int, limit: int) -> int:
        def op(tx: Tx) -> int:
            c = tx.conn
            # The oldest `limit` by id (the primary key: no scan of the table), cut at the first
            # one at or after the horizon.
            rows = c.execute(
                sa.select(t_events.c.id, t_events.c.at)
                .where(t_events.c.id < keep_from)
                .order_by(t_events.c.id)
                .limit(limit)
            ).all()
            ids = [r.id for r in itertools.takewhile(lambda r: r.at < before, rows)]
            if not ids:
                return 0
            c.execute(t_events.delete().where(t_events.c.id <= ids[-1]))
            t = schema.event_retention
            if c.execute(t.update().where(t.c.pruned_through < ids[-1]).values(pruned_through=ids[-1])).rowcount == 0:
                if c.execute(sa.select(t.c.id)).first() is None:
                    c.execute(t.insert().values(id=1, pruned_through=ids[-1]))
            return len(ids)

        return await self.db.write(op)

    async def reclaim_space(self) -> str:
        if self.sqlite:
            return await self._sqlite_vacuum()
        async with self.db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in TABLES:
                await autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
        return f"PostgreSQL: VACUUM of {', '.join(TABLES)} (space reusable)"

    async def _sqlite_vacuum(self) -> str:
        mode = await self.db.read(lambda c: int(c.exec_driver_sql("PRAGMA auto_vacuum").scalar() or 0))
        if mode != 2:
            return "SQLite: the database predates incremental vacuum; space is reused, not returned"
        path = self.db.engine.url.database
        assert path is not None
        freed = 0
        while True:
            step = await asyncio.to_thread(_incremental_vacuum, path, VACUUM_PAGES)
            if not step:
                return f"SQLite: {freed} free pages returned to the file system"
            freed += step


def _incremental_vacuum(path: str, pages: int) -> int:
    """Return up to `pages` free pages of the SQLite file to the file system: a short write of
    its own (between the coordinator's writes, which it waits for). How many it freed.

    On its own connection because Python's sqlite3 runs the pragma to completion only through
    executescript (a plain execute frees one page), which would commit the writer's transaction.
    """
    conn = sqlite3.connect(path, timeout=30)
    try:
        before = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if not before:
            return 0
        conn.executescript(f"PRAGMA incremental_vacuum({int(pages)});")
        return before - int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        conn.close()
