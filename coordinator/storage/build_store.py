"""Storing builds, their steps and artifacts, and reading a build back with everything a status
client shows (its logs are log_store's)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    CaseResult,
    CaseRun,
    JournalEntry,
    PropertyValue,
    Step,
    StepSample,
)
from coordinator.domain.results import Result
from coordinator.storage import artifacts, codec, history, journal_store, schema, test_cases
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_changes = schema.changes
t_bs = schema.buildsets
t_builds = schema.builds
t_branches = schema.build_branches
t_steps = schema.steps
t_logs = schema.logs

# Hot-path statements built once and executed with parameters: SQLAlchemy then reuses the
# compiled form, where .values(...) on each call would rebuild and re-key the statement
# (~4x the CPU of the execution itself on SQLite). Updates set the columns named in the
# parameters; "b_id" is the row's id.
_INSERT_BUILD = t_builds.insert()
_INSERT_STEP = t_steps.insert()
_INSERT_BRANCH = t_branches.insert()
_STAMPS_OF = sa.select(t_bs.c.sourcestamps_json).where(t_bs.c.id == sa.bindparam("b_id"))
_UPDATE_BUILD = t_builds.update().where(t_builds.c.id == sa.bindparam("b_id"))
_UPDATE_STEP = t_steps.update().where(t_steps.c.id == sa.bindparam("b_id"))
_COMPLETE_LOG = t_logs.update().where(t_logs.c.id == sa.bindparam("b_id"))
_LAST_NUMBER = sa.select(sa.func.max(t_builds.c.number)).where(t_builds.c.builder == sa.bindparam("b_builder"))


def list_builds_query(
    builder: str, limit: int, *, before_id: int = 0, results: Sequence[Result] = (), branch: str = "",
    among: Collection[str] | None = None,
) -> sa.Select[Any]:
    """The statement of `list_builds` (without steps), apart so a test can EXPLAIN it."""
    stmt = sa.select(t_builds).order_by(t_builds.c.id.desc()).limit(limit)
    if builder:
        stmt = stmt.where(t_builds.c.builder == builder)
    if among is not None:  # a reader scoped to some builders
        stmt = stmt.where(t_builds.c.builder.in_(sorted(among)))
    if before_id:
        stmt = stmt.where(t_builds.c.id < before_id)
    if results:
        stmt = stmt.where(t_builds.c.result.in_([int(r) for r in results]))
    if branch and len(branch) <= schema.BRANCH_INDEXED:
        # A seek on (builder, branch), newest first: no scan of the builder's history.
        bb = t_branches
        stmt = stmt.join(bb, bb.c.build_id == t_builds.c.id).where(bb.c.branch == branch)
        if builder:
            stmt = stmt.where(bb.c.builder == builder)
        stmt = stmt.order_by(None).order_by(bb.c.build_id.desc())
    elif branch:  # the stamps' JSON holds `"branch":"<json string>"` exactly (codec.dumps)
        in_json = sa.select(t_bs.c.id).where(
            t_bs.c.id == t_builds.c.buildset_id,
            t_bs.c.sourcestamps_json.contains(f'"branch":{json.dumps(branch)}', autoescape=True),
        )
        stmt = stmt.where(in_json.exists())
    return stmt


class SqlBuilds:
    """Builds, their steps and their artifacts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str], events: Callable[[Build], list[Event]],
    ) -> Build:
        def op(tx: Tx) -> Build:
            c = tx.conn
            number = (c.execute(_LAST_NUMBER, {"b_builder": request.builder}).scalar() or 0) + 1
            props = [*properties, PropertyValue("buildnumber", number, "Build")]
            build_id = int(
                c.execute(
                    _INSERT_BUILD,
                    {
                        "builder": request.builder,
                        "number": number,
                        "worker": worker,
                        "buildrequest_id": request.id,
                        "buildset_id": request.buildset_id,
                        "started_at": at,
                        "state_string": "starting",
                        "properties_json": codec.props_to_json(props),
                    },
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            stamps = c.execute(_STAMPS_OF, {"b_id": request.buildset_id}).scalar()
            branches = schema.branches_of(stamps) if stamps else []
            if branches:
                c.execute(_INSERT_BRANCH, [{"builder": request.builder, "branch": b, "build_id": build_id}
                                           for b in branches])
            build = Build(
                id=build_id, builder=request.builder, number=number, worker=worker,
                build_request_id=request.id, buildset_id=request.buildset_id, started_at=at,
                properties=props,
            )
            if step_names:
                build.steps = _insert_steps(c, build, step_names)
            for event in events(build):
                tx.emit(event)
            return build

        return await self.db.write(op)

    async def add_steps(self, build: Build, names: Sequence[str], first: int = 0) -> list[Step]:
        return await self.db.write(lambda tx: _insert_steps(tx.conn, build, names, first))

    async def start_step(self, build: Build, step: Step, at: float, events: Sequence[Event]) -> None:
        await self._update(_UPDATE_STEP, {"b_id": step.id, "started_at": at, "state_string": "running"}, events)

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float,
        logs: Sequence[int], events: Sequence[Event], properties: Sequence[PropertyValue] | None = None,
    ) -> None:
        def op(tx: Tx) -> None:
            for log_id in logs:
                tx.conn.execute(_COMPLETE_LOG, {"b_id": log_id, "complete": True})
            if properties is not None:
                props_json = codec.props_to_json(list(properties))
                tx.conn.execute(_UPDATE_BUILD, {"b_id": build.id, "properties_json": props_json})
            tx.conn.execute(
                _UPDATE_STEP,
                {"b_id": step.id, "started_at": step.started_at, "finished_at": at, "result": int(result),
                 "state_string": state_string, "hidden": step.hidden, "urls_json": codec.dumps(step.urls)},
            )
            tx.emit_all(events)

        await self.db.write(op)

    async def set_step_urls(self, step: Step, events: Sequence[Event]) -> None:
        await self._update(_UPDATE_STEP, {"b_id": step.id, "urls_json": codec.dumps(list(step.urls))}, events)

    async def set_build_state(self, build: Build, state_string: str, events: Sequence[Event]) -> None:
        await self._update(_UPDATE_BUILD, {"b_id": build.id, "state_string": state_string}, events)

    async def set_step_state(self, step: Step, state_string: str, events: Sequence[Event]) -> None:
        await self._update(_UPDATE_STEP, {"b_id": step.id, "state_string": state_string}, events)

    async def _update(self, stmt: sa.Update, values: dict[str, Any], events: Sequence[Event]) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(stmt, values)
            tx.emit_all(events)

        await self.db.write(op)

    # ---------------------------------------------------------------- artifacts

    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        return await self.db.write(artifacts.add(build, step, name, size, sha256, at))

    # ---------------------------------------------------------------- test cases
    async def add_test_results(
        self, build: Build, step: Step, revision: str, cases: Sequence[CaseResult], journal: Sequence[JournalEntry] = ()
    ) -> None:
        add = test_cases.add(build, step, revision, cases)

        def op(tx: Tx) -> None:
            add(tx)
            journal_store.record(tx.conn, journal)

        await self.db.write(op)

    async def case_runs(self, builder: str, builds: int, names: Sequence[str] | None = None) -> list[CaseRun]:
        return await self.db.read(lambda c: test_cases.runs(c, builder, builds, names))

    async def failing_cases(self, builder: str, number: int, limit: int) -> list[CaseResult]:
        return await self.db.read(lambda c: test_cases.failing(c, builder, number, limit))

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        return await self.db.read(lambda c: artifacts.list_for_build(c, builder, number))

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None:
        return await self.db.read(lambda c: artifacts.get(c, builder, number, name))

    # ---------------------------------------------------------------- reads

    async def get_build(self, builder: str, number: int) -> Build | None:
        def q(c: sa.Connection) -> Build | None:
            r = c.execute(
                sa.select(t_builds).where(t_builds.c.builder == builder, t_builds.c.number == number)
            ).first()
            if r is None:
                return None
            build = codec.build_from_row(r)
            step_rows = c.execute(
                sa.select(t_steps).where(t_steps.c.build_id == build.id).order_by(t_steps.c.number)
            ).all()
            build.steps = [codec.step_from_row(s) for s in step_rows]
            by_id = {s.id: s for s in build.steps}
            if by_id:
                for lr in c.execute(sa.select(t_logs).where(t_logs.c.step_id.in_(list(by_id))).order_by(t_logs.c.id)):
                    by_id[lr.step_id].logs.append(codec.log_from_row(lr))
            bs = c.execute(sa.select(t_bs).where(t_bs.c.id == build.buildset_id)).first()
            if bs is not None:
                build.reason = bs.reason
                build.sourcestamps = codec.stamps_from_json(bs.sourcestamps_json)
                ids = json.loads(bs.change_ids_json)
                if ids:
                    rows = c.execute(sa.select(t_changes).where(t_changes.c.id.in_(ids)).order_by(t_changes.c.id))
                    build.changes = [codec.change_from_row(x) for x in rows]
            build.artifacts = artifacts.list_by_build_id(c, build.id, builder, number)
            return build

        return await self.db.read(q)

    async def list_builds(
        self, builder: str, limit: int, *, before_id: int = 0, results: Sequence[Result] = (),
        with_steps: bool = False, branch: str = "", among: Collection[str] | None = None,
    ) -> list[Build]:
        if among is not None and not among:
            return []

        def q(c: sa.Connection) -> list[Build]:
            stmt = list_builds_query(builder, limit, before_id=before_id, results=results, branch=branch, among=among)
            builds = [codec.build_from_row(r) for r in c.execute(stmt)]
            if with_steps and builds:
                by_id = {b.id: b for b in builds}
                rows = c.execute(
                    sa.select(t_steps).where(t_steps.c.build_id.in_(list(by_id)))
                    .order_by(t_steps.c.build_id, t_steps.c.number)
                )
                for r in rows:
                    by_id[r.build_id].steps.append(codec.step_from_row(r))
            return builds

        return await self.db.read(q)

    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        return await self.db.read(lambda c: history.recent_step_durations(c, builder, builds))


    async def previous_build_result(self, builder: str, number: int) -> Result | None:
        """The result of the newest complete build of `builder` before `number`, skipping
        RETRY builds (as Buildbot's getPreviousBuild does) and CANCELLED ones (superseded or
        stopped work says nothing about the tree); None when there is none."""

        def q(c: sa.Connection) -> Result | None:
            r = c.execute(
                sa.select(t_builds.c.result)
                .where(t_builds.c.builder == builder, t_builds.c.number < number,
                       t_builds.c.result.is_not(None),
                       t_builds.c.result.not_in([int(Result.RETRY), int(Result.CANCELLED)]))
                .order_by(t_builds.c.number.desc()).limit(1)
            ).first()
            return None if r is None else Result(r.result)

        return await self.db.read(q)

    async def builds_of_buildset(self, buildset_id: int) -> list[tuple[str, int]]:
        """(builder, number) of the newest build of each of the buildset's requests."""

        def q(c: sa.Connection) -> list[tuple[str, int]]:
            rows = c.execute(
                sa.select(t_builds.c.builder, t_builds.c.buildrequest_id, sa.func.max(t_builds.c.number))
                .where(t_builds.c.buildset_id == buildset_id)
                .group_by(t_builds.c.builder, t_builds.c.buildrequest_id)
                .order_by(t_builds.c.builder)
            )
            return [(r[0], int(r[2])) for r in rows]

        return await self.db.read(q)

def _insert_steps(c: sa.Connection, build: Build, names: Sequence[str], first: int = 0) -> list[Step]:
    out = []
    for i, name in enumerate(names, first):
        step_id = c.execute(
            _INSERT_STEP, {"build_id": build.id, "number": i, "name": name, "state_string": "pending"}
        ).inserted_primary_key[0]  # type: ignore[index]
        out.append(Step(id=int(step_id), build_id=build.id, number=i, name=name))
    return out
