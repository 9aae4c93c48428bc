"""Storing buildsets and their build requests: adding them (with the scheduler state change that
made them), claiming requests, reading them back, and the Dependent schedulers' backlog."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import Event
from coordinator.domain.model import BuildRequest, Buildset, NewBuildset, SchedulerCommit
from coordinator.storage import codec, dependent_store, journal_store, scheduler_store, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_bs = schema.buildsets
t_br = schema.buildrequests
t_collapses = schema.buildrequest_collapses

# Hot-path statements built once and executed with parameters (see build_store); "b_id" is the
# row's id.
_INSERT_BUILDSET = t_bs.insert()
_INSERT_REQUEST = t_br.insert()
_CLAIM = t_br.update().where(
    t_br.c.id == sa.bindparam("b_id"), t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false()
)


class SqlBuildsets:
    """Buildsets and build requests."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_buildset(
        self, bs: NewBuildset | None, at: float, commit: SchedulerCommit | None,
        events: Callable[[int, list[BuildRequest]], list[Event]],
    ) -> tuple[int, dict[str, int]]:
        """Store a buildset and its requests; with `commit`, apply that scheduler state change in
        the same transaction (bs None: only the commit, returning (0, {}))."""

        def op(tx: Tx) -> tuple[int, dict[str, int]]:
            c = tx.conn
            if commit is not None:
                scheduler_store.apply_commit(c, commit)
                if commit.upstream_buildset_id:
                    dependent_store.check_not_made(c, commit.scheduler, commit.upstream_buildset_id)
            if bs is None:
                if commit is not None and commit.upstream_buildset_id:
                    dependent_store.record(c, commit.scheduler, commit.upstream_buildset_id, None, at)
                return 0, {}
            bs_id = int(
                c.execute(
                    _INSERT_BUILDSET,
                    {
                        "reason": bs.reason,
                        "scheduler": bs.scheduler,
                        "submitted_at": at,
                        "sourcestamps_json": codec.stamps_to_json(bs.sourcestamps),
                        "properties_json": codec.props_to_json(bs.properties),
                        "change_ids_json": codec.dumps(bs.change_ids),
                        "complete": False,
                    },
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            if commit is not None and commit.upstream_buildset_id:
                dependent_store.record(c, commit.scheduler, commit.upstream_buildset_id, bs_id, at)
            requests = []
            for builder in bs.builders:
                req_id = int(
                    c.execute(
                        _INSERT_REQUEST,
                        {"buildset_id": bs_id, "builder": builder, "priority": bs.priority,
                         "submitted_at": at, "complete": False},
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
                requests.append(BuildRequest(id=req_id, buildset_id=bs_id, builder=builder,
                                             priority=bs.priority, submitted_at=at))
            for event in events(bs_id, requests):
                tx.emit(event)
            req_ids = {r.builder: r.id for r in requests}
            if commit is not None and commit.journal is not None:  # a Trigger step's
                journal_store.record(c, [commit.journal.with_buildset(bs_id, req_ids)])
            return bs_id, req_ids

        try:
            return await self.db.write(op)
        except sa.exc.IntegrityError:
            if commit is None or not commit.upstream_buildset_id:
                raise
            # Another coordinator stored this upstream buildset's downstream just now.
            raise AlreadyScheduled(
                f"scheduler {commit.scheduler!r} already handled upstream buildset {commit.upstream_buildset_id}"
            ) from None

    async def get_buildset(self, buildset_id: int) -> Buildset | None:
        def q(c: sa.Connection) -> Buildset | None:
            r = c.execute(sa.select(t_bs).where(t_bs.c.id == buildset_id)).first()
            return None if r is None else codec.buildset_from_row(r)

        return await self.db.read(q)

    async def unclaimed_requests(self) -> list[BuildRequest]:
        def q(c: sa.Connection) -> list[BuildRequest]:
            rows = c.execute(
                sa.select(t_br)
                .where(t_br.c.complete == sa.false(), t_br.c.claimed_by.is_(None))
                .order_by(t_br.c.id)
            )
            return [
                BuildRequest(
                    id=r.id,
                    buildset_id=r.buildset_id,
                    builder=r.builder,
                    priority=r.priority,
                    submitted_at=r.submitted_at,
                )
                for r in rows
            ]

        return await self.db.read(q)

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool:
        """Atomically claim an unclaimed request: exactly one claimer wins, on any engine."""

        def op(tx: Tx) -> bool:
            res = tx.conn.execute(_CLAIM, {"b_id": request_id, "claimed_by": coordinator_id, "claimed_at": at})
            return res.rowcount == 1

        return await self.db.write(op)

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]:
        ids = list(buildset_ids)

        def q(c: sa.Connection) -> dict[int, Buildset]:
            out: dict[int, Buildset] = {}
            for i in range(0, len(ids), 500):  # bounded IN lists
                for r in c.execute(sa.select(t_bs).where(t_bs.c.id.in_(ids[i : i + 500]))):
                    out[r.id] = codec.buildset_from_row(r)
            return out

        return await self.db.read(q)

    async def list_build_requests(
        self, builder: str, buildset_id: int, limit: int, *, among: Collection[str] | None = None
    ) -> list[BuildRequest]:
        if among is not None and not among:
            return []

        def q(c: sa.Connection) -> list[BuildRequest]:
            stmt = sa.select(*REQUEST_COLUMNS).outerjoin(t_collapses, t_collapses.c.request_id == t_br.c.id)
            stmt = stmt.order_by(t_br.c.id.desc()).limit(limit)
            if builder:
                stmt = stmt.where(t_br.c.builder == builder)
            if among is not None:
                stmt = stmt.where(t_br.c.builder.in_(sorted(among)))
            if buildset_id:
                stmt = stmt.where(t_br.c.buildset_id == buildset_id)
            return [request_from_row(r) for r in c.execute(stmt)]

        return await self.db.read(q)

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        return await self.db.write(lambda tx: dependent_store.backlog(tx.conn, scheduler, upstream))


REQUEST_COLUMNS = (t_br, t_collapses.c.absorbed_by)


def request_from_row(r: Any) -> BuildRequest:
    """A request from a row of REQUEST_COLUMNS (outer-joined to its collapse)."""
    return BuildRequest(
        id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
        submitted_at=r.submitted_at, claimed=r.claimed_by is not None, complete=r.complete,
        result=codec.result_or_none(r.result), absorbed_by=r.absorbed_by or 0,
        completed_at=r.completed_at,
    )
