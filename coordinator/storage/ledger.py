"""The domain's Ledger over one SQL transaction: reads and writes rows, decides nothing (the
bookkeeping rules that drive it are in domain/builds/bookkeeping.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import Build, BuildRequest, PropertyValue
from coordinator.domain.ports import Ledger
from coordinator.domain.results import Result
from coordinator.storage import codec, schema
from coordinator.storage.buildset_store import REQUEST_COLUMNS, request_from_row
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

T = TypeVar("T")
t_bs = schema.buildsets
t_br = schema.buildrequests
t_builds = schema.builds
t_steps = schema.steps
t_collapses = schema.buildrequest_collapses

# Hot-path statements built once and executed with parameters (see build_store).
_UPDATE_REQUEST = t_br.update().where(t_br.c.id == sa.bindparam("b_id"))
_COMPLETE_UNCLAIMED = t_br.update().where(
    t_br.c.id == sa.bindparam("b_id"), t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false()
)
_UPDATE_BUILD = t_builds.update().where(t_builds.c.id == sa.bindparam("b_id"))
_UPDATE_BUILDSET = t_bs.update().where(t_bs.c.id == sa.bindparam("b_id"))
_SELECT_REQUESTS = sa.select(*REQUEST_COLUMNS).outerjoin(t_collapses, t_collapses.c.request_id == t_br.c.id)
_RESULTS_OF_BUILDSET = sa.select(t_br.c.complete, t_br.c.result).where(t_br.c.buildset_id == sa.bindparam("b_id"))


class SqlBookkeeper:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, decide: Callable[[Ledger], T]) -> T:
        return await self.db.write(lambda tx: decide(SqlLedger(tx)))


class SqlLedger:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.c = tx.conn

    def requests(self, request_ids: Sequence[int]) -> dict[int, BuildRequest]:
        rows = self.c.execute(_SELECT_REQUESTS.where(t_br.c.id.in_(list(request_ids))).order_by(t_br.c.id))
        return {r.id: request_from_row(r) for r in rows}

    def request_results(self, buildset_id: int) -> list[Result | None]:
        rows = self.c.execute(_RESULTS_OF_BUILDSET, {"b_id": buildset_id})
        return [Result(r.result) if r.complete else None for r in rows]

    def complete_request(self, request_id: int, result: Result, at: float, *, unclaimed_only: bool) -> bool:
        stmt = _COMPLETE_UNCLAIMED if unclaimed_only else _UPDATE_REQUEST
        res = self.c.execute(stmt, {"b_id": request_id, "complete": True, "result": int(result), "completed_at": at})
        return bool(res.rowcount == 1)

    def unclaim_request(self, request_id: int) -> None:
        self.c.execute(_UPDATE_REQUEST, {"b_id": request_id, "claimed_by": None, "claimed_at": None})

    def unclaim_all(self, coordinator_id: str, keep: Collection[int] = ()) -> int:
        where = [t_br.c.claimed_by == coordinator_id, t_br.c.complete == sa.false()]
        if keep:
            where.append(t_br.c.id.not_in(list(keep)))
        res = self.c.execute(t_br.update().where(*where).values(claimed_by=None, claimed_at=None))
        return int(res.rowcount)

    def record_collapse(self, request_id: int, into_id: int, at: float) -> None:
        self.c.execute(t_collapses.insert().values(request_id=request_id, absorbed_by=into_id, at=at))

    def complete_buildset(self, buildset_id: int, result: Result, at: float) -> None:
        values = {"b_id": buildset_id, "complete": True, "result": int(result), "completed_at": at}
        self.c.execute(_UPDATE_BUILDSET, values)

    def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, properties: list[PropertyValue] | None
    ) -> None:
        values: dict[str, Any] = {"b_id": build.id, "finished_at": at, "result": int(result),
                                  "state_string": state_string}
        if properties is not None:
            values["properties_json"] = codec.props_to_json(properties)
        self.c.execute(_UPDATE_BUILD, values)

    def running_builds(self, coordinator_id: str) -> list[Build]:
        rows = self.c.execute(
            sa.select(t_builds)
            .join(t_br, t_br.c.id == t_builds.c.buildrequest_id)
            .where(t_builds.c.finished_at.is_(None), t_br.c.claimed_by == coordinator_id)
            .order_by(t_builds.c.id)
        )
        return [codec.build_from_row(r) for r in rows]

    def end_running_steps(self, build: Build, result: Result, state_string: str, at: float) -> None:
        self.c.execute(
            t_steps.update()
            .where(t_steps.c.build_id == build.id, t_steps.c.finished_at.is_(None), t_steps.c.started_at.is_not(None))
            .values(finished_at=at, result=int(result), state_string=state_string)
        )

    def emit(self, event: Event) -> None:
        self.tx.emit(event)
