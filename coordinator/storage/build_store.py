"""Storing builds, their steps and the steps' logs (log chunks go through the writer's batch
path), and reading a build back with everything a status client shows."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Sequence
from typing import Any

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Build,
    BuildRequest,
    LogChunk,
    LogInfo,
    PropertyValue,
    Step,
    StepSample,
)
from coordinator.domain.results import Result
from coordinator.storage import artifacts, codec, history, schema
from coordinator.storage.buildset_store import maybe_finish_buildset
from coordinator.storage.store import Store
from coordinator.storage.writer import Tx

t_changes = schema.changes
t_bs = schema.buildsets
t_br = schema.buildrequests
t_builds = schema.builds
t_steps = schema.steps
t_logs = schema.logs
t_chunks = schema.logchunks

# Hot-path statements built once and executed with parameters: SQLAlchemy then reuses the
# compiled form, where .values(...) on each call would rebuild and re-key the statement
# (~4x the CPU of the execution itself on SQLite). Updates set the columns named in the
# parameters; "b_id" is the row's id.
_INSERT_BUILD = t_builds.insert()
_INSERT_STEP = t_steps.insert()
_INSERT_LOG = t_logs.insert()
_UPDATE_REQUEST = t_br.update().where(t_br.c.id == sa.bindparam("b_id"))
_UPDATE_BUILD = t_builds.update().where(t_builds.c.id == sa.bindparam("b_id"))
_UPDATE_STEP = t_steps.update().where(t_steps.c.id == sa.bindparam("b_id"))
_UPDATE_LOG = t_logs.update().where(t_logs.c.id == sa.bindparam("b_id"))
_LAST_NUMBER = sa.select(sa.func.max(t_builds.c.number)).where(t_builds.c.builder == sa.bindparam("b_builder"))


class BuildStore(Store):
    """The build, step and log part of SqlRepository."""

    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str] = (),
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
            tx.emit(
                Event(kind="build.started", at=at, builder=request.builder, build_number=number,
                      buildset_id=request.buildset_id, worker=worker,
                      details={"build_id": build_id, "request_id": request.id})
            )
            build = Build(
                id=build_id, builder=request.builder, number=number, worker=worker,
                build_request_id=request.id, buildset_id=request.buildset_id, started_at=at,
                properties=props,
            )
            if step_names:
                build.steps = _insert_steps(c, build, step_names)
            return build

        return await self.writer.submit(op)

    async def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, requeue: bool,
        properties: list[PropertyValue] | None = None,
    ) -> None:
        """End a build; complete its request (or requeue it on RETRY) and maybe its buildset."""

        def op(tx: Tx) -> None:
            c = tx.conn
            values: dict[str, Any] = {"b_id": build.id, "finished_at": at, "result": int(result),
                                      "state_string": state_string}
            if properties is not None:
                values["properties_json"] = codec.props_to_json(properties)
            c.execute(_UPDATE_BUILD, values)
            tx.emit(
                Event(kind="build.finished", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, result=result, worker=build.worker,
                      details={"state_string": state_string, "duration": at - build.started_at})
            )
            if requeue:
                c.execute(
                    t_br.update().where(t_br.c.id == build.build_request_id)
                    .values(claimed_by=None, claimed_at=None)
                )
                tx.emit(
                    Event(kind="buildrequest.retried", at=at, builder=build.builder,
                          buildset_id=build.buildset_id,
                          details={"request_id": build.build_request_id, "build_number": build.number})
                )
                return
            c.execute(
                _UPDATE_REQUEST,
                {"b_id": build.build_request_id, "complete": True, "result": int(result), "completed_at": at},
            )
            maybe_finish_buildset(tx, build.buildset_id, at)

        await self.writer.submit(op)

    async def add_steps(self, build: Build, names: Sequence[str]) -> list[Step]:
        return await self.writer.submit(lambda tx: _insert_steps(tx.conn, build, names))

    async def start_step(self, build: Build, step: Step, at: float) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(_UPDATE_STEP, {"b_id": step.id, "started_at": at, "state_string": "running"})
            tx.emit(
                Event(kind="step.started", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, step_number=step.number, step_name=step.name,
                      worker=build.worker)
            )

        await self.writer.submit(op)

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float,
        logs: Sequence[int] = (),
    ) -> None:
        def op(tx: Tx) -> None:
            for log_id in logs:
                tx.conn.execute(_UPDATE_LOG, {"b_id": log_id, "complete": True})
            started = step.started_at  # None for a step that never ran (skipped)
            tx.conn.execute(
                _UPDATE_STEP,
                {"b_id": step.id, "started_at": started, "finished_at": at, "result": int(result),
                 "state_string": state_string, "hidden": step.hidden, "urls_json": codec.dumps(step.urls)},
            )
            tx.emit(
                Event(kind="step.finished", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, step_number=step.number, step_name=step.name,
                      result=result, worker=build.worker,
                      details={"state_string": state_string,
                               "duration": 0.0 if started is None else at - started})
            )

        await self.writer.submit(op)

    async def set_step_urls(self, build: Build, step: Step, at: float) -> None:
        urls = list(step.urls)

        def op(tx: Tx) -> None:
            tx.conn.execute(t_steps.update().where(t_steps.c.id == step.id).values(urls_json=codec.dumps(urls)))
            tx.emit(
                Event(kind="step.urls", at=at, builder=build.builder, build_number=build.number,
                      buildset_id=build.buildset_id, step_number=step.number, step_name=step.name,
                      worker=build.worker, details={"urls": [{"name": n, "url": u} for n, u in urls]})
            )

        await self.writer.submit(op)

    async def set_build_properties(self, build: Build, properties: list[PropertyValue]) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                t_builds.update().where(t_builds.c.id == build.id)
                .values(properties_json=codec.props_to_json(properties))
            )

        await self.writer.submit(op)

    # ---------------------------------------------------------------- logs

    async def add_log(self, step: Step, name: str, type_: str) -> LogInfo:
        def op(tx: Tx) -> LogInfo:
            log_id = tx.conn.execute(
                _INSERT_LOG, {"step_id": step.id, "name": name, "type": type_, "size": 0, "complete": False}
            ).inserted_primary_key[0]  # type: ignore[index]
            return LogInfo(id=int(log_id), step_id=step.id, name=name, type=type_)

        return await self.writer.submit(op)

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        flag, data = codec.compress(chunk.data)
        return self.writer.submit_chunk(
            {
                "log_id": log_id,
                "seq": seq,
                "channel": chunk.channel,
                "offset": chunk.offset,
                "channel_offset": chunk.channel_offset,
                "length": len(chunk.data),
                "compressed": flag,
                "data": data,
            }
        )

    async def finish_log(self, log_id: int) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(_UPDATE_LOG, {"b_id": log_id, "complete": True})

        await self.writer.submit(op)

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]:
        """Chunks covering [offset, offset+limit) of the log, or of one channel when channel>0."""

        def q(c: sa.Connection) -> list[LogChunk]:
            if channel:
                pos = t_chunks.c.channel_offset
                where = [t_chunks.c.log_id == log_id, t_chunks.c.channel == channel]
            else:
                pos = t_chunks.c.offset
                where = [t_chunks.c.log_id == log_id]
            rows = c.execute(
                sa.select(t_chunks)
                .where(*where, pos + t_chunks.c.length > offset, pos < offset + limit)
                .order_by(t_chunks.c.seq)
            )
            return [
                LogChunk(
                    channel=r.channel,
                    data=codec.decompress(r.compressed, r.data),
                    offset=r.offset,
                    channel_offset=r.channel_offset,
                )
                for r in rows
            ]

        return await self._read(q)

    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None:
        def q(c: sa.Connection) -> LogInfo | None:
            step_match = (
                t_steps.c.number == int(step) if step.isdigit() else t_steps.c.name == step
            )
            r = c.execute(
                sa.select(t_logs)
                .join(t_steps, t_steps.c.id == t_logs.c.step_id)
                .join(t_builds, t_builds.c.id == t_steps.c.build_id)
                .where(t_builds.c.builder == builder, t_builds.c.number == number, step_match,
                       t_logs.c.name == log_name)
            ).first()
            return None if r is None else codec.log_from_row(r)

        return await self._read(q)

    async def get_log_info(self, log_id: int) -> LogInfo | None:
        def q(c: sa.Connection) -> LogInfo | None:
            r = c.execute(sa.select(t_logs).where(t_logs.c.id == log_id)).first()
            return None if r is None else codec.log_from_row(r)

        return await self._read(q)

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

        return await self._read(q)

    async def list_builds(self, builder: str, limit: int) -> list[Build]:
        def q(c: sa.Connection) -> list[Build]:
            stmt = sa.select(t_builds).order_by(t_builds.c.id.desc()).limit(limit)
            if builder:
                stmt = stmt.where(t_builds.c.builder == builder)
            return [codec.build_from_row(r) for r in c.execute(stmt)]

        return await self._read(q)

    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        return await self._read(lambda c: history.recent_step_durations(c, builder, builds))


def _insert_steps(c: sa.Connection, build: Build, names: Sequence[str]) -> list[Step]:
    out = []
    for i, name in enumerate(names):
        step_id = c.execute(
            _INSERT_STEP, {"build_id": build.id, "number": i, "name": name, "state_string": "pending"}
        ).inserted_primary_key[0]  # type: ignore[index]
        out.append(Step(id=int(step_id), build_id=build.id, number=i, name=name))
    return out
