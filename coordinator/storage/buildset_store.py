"""Storing buildsets and their build requests: adding them (with the scheduler state change that
made them), claiming requests, and finishing a buildset when its last request completes."""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import Event
from coordinator.domain.model import BuildRequest, Buildset, NewBuildset, SchedulerCommit
from coordinator.domain.results import Result, worst
from coordinator.storage import codec, dependent_store, scheduler_store, schema
from coordinator.storage.store import Store
from coordinator.storage.writer import Tx

t_bs = schema.buildsets
t_br = schema.buildrequests
t_builds = schema.builds
t_steps = schema.steps
t_workers = schema.workers

# Hot-path statements built once and executed with parameters (see build_store); "b_id" is the
# row's id.
_INSERT_BUILDSET = t_bs.insert()
_INSERT_REQUEST = t_br.insert()
_UPDATE_BUILDSET = t_bs.update().where(t_bs.c.id == sa.bindparam("b_id"))
_CLAIM = t_br.update().where(
    t_br.c.id == sa.bindparam("b_id"), t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false()
)
_REQUESTS_OF_BUILDSET = sa.select(t_br.c.complete, t_br.c.result).where(t_br.c.buildset_id == sa.bindparam("b_id"))


class BuildsetStore(Store):
    """The buildset and build request part of SqlRepository."""

    async def add_buildset(
        self, bs: NewBuildset | None, at: float, commit: SchedulerCommit | None = None
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
            tx.emit(
                Event(
                    kind="buildset.added",
                    at=at,
                    buildset_id=bs_id,
                    details={
                        "reason": bs.reason,
                        "scheduler": bs.scheduler,
                        "builders": bs.builders,
                        "change_ids": bs.change_ids,
                    },
                )
            )
            req_ids: dict[str, int] = {}
            for builder in bs.builders:
                req_id = int(
                    c.execute(
                        _INSERT_REQUEST,
                        {"buildset_id": bs_id, "builder": builder, "priority": bs.priority,
                         "submitted_at": at, "complete": False},
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
                req_ids[builder] = req_id
                tx.emit(
                    Event(
                        kind="buildrequest.added",
                        at=at,
                        builder=builder,
                        buildset_id=bs_id,
                        details={"request_id": req_id, "priority": bs.priority},
                    )
                )
            return bs_id, req_ids

        try:
            return await self.writer.submit(op)
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

        return await self._read(q)

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

        return await self._read(q)

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool:
        """Atomically claim an unclaimed request: exactly one claimer wins, on any engine."""

        def op(tx: Tx) -> bool:
            res = tx.conn.execute(_CLAIM, {"b_id": request_id, "claimed_by": coordinator_id, "claimed_at": at})
            return res.rowcount == 1

        return await self.writer.submit(op)

    async def release_orphaned_claims(self, coordinator_id: str, at: float) -> int:
        """At start-up: builds this coordinator was running when it died end as RETRY and their
        requests go back to the queue."""

        def op(tx: Tx) -> int:
            c = tx.conn
            running = c.execute(
                sa.select(t_builds.c.id, t_builds.c.builder, t_builds.c.number, t_builds.c.buildset_id)
                .join(t_br, t_br.c.id == t_builds.c.buildrequest_id)
                .where(t_builds.c.finished_at.is_(None), t_br.c.claimed_by == coordinator_id)
            ).all()
            for b in running:
                c.execute(
                    t_steps.update()
                    .where(t_steps.c.build_id == b.id, t_steps.c.finished_at.is_(None), t_steps.c.started_at.is_not(None))
                    .values(finished_at=at, result=int(Result.RETRY), state_string="coordinator restarted")
                )
                c.execute(
                    t_builds.update()
                    .where(t_builds.c.id == b.id)
                    .values(finished_at=at, result=int(Result.RETRY), state_string="retry: coordinator restarted")
                )
                tx.emit(
                    Event(kind="build.finished", at=at, builder=b.builder, build_number=b.number,
                          buildset_id=b.buildset_id, result=Result.RETRY,
                          details={"state_string": "retry: coordinator restarted"})
                )
            res = c.execute(
                t_br.update()
                .where(t_br.c.claimed_by == coordinator_id, t_br.c.complete == sa.false())
                .values(claimed_by=None, claimed_at=None)
            )
            c.execute(t_workers.update().values(connected=False))
            return int(res.rowcount)

        return await self.writer.submit(op)

    async def pending_counts(self) -> dict[str, int]:
        def q(c: sa.Connection) -> dict[str, int]:
            rows = c.execute(
                sa.select(t_br.c.builder, sa.func.count())
                .where(t_br.c.complete == sa.false(), t_br.c.claimed_by.is_(None))
                .group_by(t_br.c.builder)
            )
            return {r[0]: int(r[1]) for r in rows}

        return await self._read(q)


def maybe_finish_buildset(tx: Tx, buildset_id: int, at: float) -> None:
    """In the caller's transaction: once all its requests are complete, complete the buildset
    with the worst of their results."""
    c = tx.conn
    rows = c.execute(_REQUESTS_OF_BUILDSET, {"b_id": buildset_id}).all()
    if not all(r.complete for r in rows):
        return
    result = Result.SUCCESS
    for r in rows:
        result = worst(result, Result(r.result))
    c.execute(_UPDATE_BUILDSET, {"b_id": buildset_id, "complete": True, "result": int(result), "completed_at": at})
    tx.emit(Event(kind="buildset.finished", at=at, buildset_id=buildset_id, result=result))

