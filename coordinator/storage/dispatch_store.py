"""Storage for scheduling: collapsing build requests, reading several buildsets at once, the
request list, and the state strings of builds and steps that wait (e.g. for a lock)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import Build, BuildRequest, Buildset, Step
from coordinator.domain.results import Result
from coordinator.storage import codec, schema
from coordinator.storage.buildset_store import maybe_finish_buildset  # shared with builds
from coordinator.storage.store import Store
from coordinator.storage.writer import Tx

T = TypeVar("T")
t_bs = schema.buildsets
t_br = schema.buildrequests
t_builds = schema.builds
t_steps = schema.steps
t_collapses = schema.buildrequest_collapses


class DispatchStore(Store):
    """The scheduling part of SqlRepository."""

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]:
        ids = list(buildset_ids)

        def q(c: sa.Connection) -> dict[int, Buildset]:
            out: dict[int, Buildset] = {}
            for i in range(0, len(ids), 500):  # bounded IN lists
                for r in c.execute(sa.select(t_bs).where(t_bs.c.id.in_(ids[i : i + 500]))):
                    out[r.id] = codec.buildset_from_row(r)
            return out

        return await self._read(q)

    async def collapse_requests(self, into: BuildRequest, request_ids: Sequence[int], at: float) -> list[int]:

        def op(tx: Tx) -> list[int]:
            c = tx.conn
            absorbed = []
            for rid in request_ids:
                # Only a request nobody claimed meanwhile (another coordinator may have).
                res = c.execute(
                    t_br.update()
                    .where(t_br.c.id == rid, t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false())
                    .values(complete=True, result=int(Result.SKIPPED), completed_at=at)
                )
                if res.rowcount != 1:
                    continue
                c.execute(t_collapses.insert().values(request_id=rid, absorbed_by=into.id, at=at))
                absorbed.append(rid)
            rows = c.execute(
                sa.select(t_br.c.id, t_br.c.buildset_id).where(t_br.c.id.in_(absorbed))
            ).all() if absorbed else []
            for r in rows:
                tx.emit(
                    Event(kind="buildrequest.collapsed", at=at, builder=into.builder, buildset_id=r.buildset_id,
                          result=Result.SKIPPED, details={"request_id": r.id, "absorbed_by": into.id})
                )
            for bs_id in sorted({r.buildset_id for r in rows}):
                maybe_finish_buildset(tx, bs_id, at)
            return absorbed

        return await self.writer.submit(op)

    async def list_build_requests(self, builder: str, buildset_id: int, limit: int) -> list[BuildRequest]:
        def q(c: sa.Connection) -> list[BuildRequest]:
            stmt = (
                sa.select(t_br, t_collapses.c.absorbed_by)
                .outerjoin(t_collapses, t_collapses.c.request_id == t_br.c.id)
                .order_by(t_br.c.id.desc())
                .limit(limit)
            )
            if builder:
                stmt = stmt.where(t_br.c.builder == builder)
            if buildset_id:
                stmt = stmt.where(t_br.c.buildset_id == buildset_id)
            return [_request(r) for r in c.execute(stmt)]

        return await self._read(q)

    async def cancel_requests(
        self, request_ids: Sequence[int], reason: str, at: float
    ) -> tuple[list[int], dict[int, BuildRequest]]:
        """Complete the requests nobody claimed as CANCELLED (one conditional UPDATE each, so a
        claim and a cancel never both win), finishing their buildsets when that was their last
        request; returns the ids cancelled and every existing request as it is now."""

        def op(tx: Tx) -> tuple[list[int], dict[int, BuildRequest]]:
            c = tx.conn
            cancelled = []
            for rid in request_ids:
                res = c.execute(
                    t_br.update()
                    .where(t_br.c.id == rid, t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false())
                    .values(complete=True, result=int(Result.CANCELLED), completed_at=at)
                )
                if res.rowcount == 1:
                    cancelled.append(rid)
            rows = c.execute(
                sa.select(t_br, t_collapses.c.absorbed_by)
                .outerjoin(t_collapses, t_collapses.c.request_id == t_br.c.id)
                .where(t_br.c.id.in_(list(request_ids)))
            ).all()
            now = {r.id: _request(r) for r in rows}
            for rid in cancelled:
                req = now[rid]
                tx.emit(
                    Event(kind="buildrequest.cancelled", at=at, builder=req.builder, buildset_id=req.buildset_id,
                          result=Result.CANCELLED, details={"request_id": rid, "reason": reason})
                )
            for bs_id in sorted({now[rid].buildset_id for rid in cancelled}):
                maybe_finish_buildset(tx, bs_id, at)
            return cancelled, now

        return await self.writer.submit(op)

    async def set_build_state(self, build: Build, state_string: str, at: float) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(t_builds.update().where(t_builds.c.id == build.id).values(state_string=state_string))
            tx.emit(
                Event(kind="build.state", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, worker=build.worker, details={"state_string": state_string})
            )

        build.state_string = state_string
        await self.writer.submit(op)

    async def set_step_state(self, build: Build, step: Step, state_string: str, at: float) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(t_steps.update().where(t_steps.c.id == step.id).values(state_string=state_string))
            tx.emit(
                Event(kind="step.state", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, step_number=step.number, step_name=step.name,
                      worker=build.worker, details={"state_string": state_string})
            )

        step.state_string = state_string
        await self.writer.submit(op)


def _request(r: Any) -> BuildRequest:
    return BuildRequest(
        id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
        submitted_at=r.submitted_at, claimed=r.claimed_by is not None, complete=r.complete,
        result=codec.result_or_none(r.result), absorbed_by=r.absorbed_by or 0,
        completed_at=r.completed_at,
    )
