"""The SQL implementation of the domain's Repository, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from coordinator.domain.eta import StepSample
from coordinator.domain.events import Event
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Buildset,
    Change,
    LogChunk,
    LogInfo,
    NewBuildset,
    Property,
    Step,
    WorkerRecord,
)
from coordinator.domain.ports import Notification
from coordinator.domain.results import Result, worst
from coordinator.domain.scheduler_state import (
    AlreadyScheduled,
    Classified,
    SchedulerCommit,
    SchedulerRecord,
)
from coordinator.storage import artifacts, codec, dependent_store, history, scheduler_store, schema
from coordinator.storage.changes import ChangeSourceStates, insert_changes
from coordinator.storage.dispatch_store import DispatchStore
from coordinator.storage.writer import Tx, Writer

log = logging.getLogger(__name__)
T = TypeVar("T")

t_changes = schema.changes
t_bs = schema.buildsets
t_br = schema.buildrequests
t_builds = schema.builds
t_steps = schema.steps
t_logs = schema.logs
t_chunks = schema.logchunks
t_workers = schema.workers
t_events = schema.events

# Hot-path statements built once and executed with parameters: SQLAlchemy then reuses the
# compiled form, where .values(...) on each call would rebuild and re-key the statement
# (~4x the CPU of the execution itself on SQLite). Updates set the columns named in the
# parameters; "b_id" is the row's id.
_INSERT_BUILDSET = t_bs.insert()
_INSERT_REQUEST = t_br.insert()
_INSERT_BUILD = t_builds.insert()
_INSERT_STEP = t_steps.insert()
_INSERT_LOG = t_logs.insert()
_UPDATE_REQUEST = t_br.update().where(t_br.c.id == sa.bindparam("b_id"))
_UPDATE_BUILD = t_builds.update().where(t_builds.c.id == sa.bindparam("b_id"))
_UPDATE_STEP = t_steps.update().where(t_steps.c.id == sa.bindparam("b_id"))
_UPDATE_LOG = t_logs.update().where(t_logs.c.id == sa.bindparam("b_id"))
_UPDATE_BUILDSET = t_bs.update().where(t_bs.c.id == sa.bindparam("b_id"))
_CLAIM = t_br.update().where(
    t_br.c.id == sa.bindparam("b_id"), t_br.c.claimed_by.is_(None), t_br.c.complete == sa.false()
)
_LAST_NUMBER = sa.select(sa.func.max(t_builds.c.number)).where(t_builds.c.builder == sa.bindparam("b_builder"))
_REQUESTS_OF_BUILDSET = sa.select(t_br.c.complete, t_br.c.result).where(t_br.c.buildset_id == sa.bindparam("b_id"))


class StorageError(Exception):
    """The database cannot be opened or used; the message says why."""


def database_url(url: str | None, data_dir: Path) -> str:
    """Normalise a user's database URL to an async driver URL (default: SQLite in data_dir)."""
    if not url:
        return f"sqlite+aiosqlite:///{(data_dir / 'gantry.sqlite').resolve()}"
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql:", "postgres:", "postgresql+psycopg2:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    return url


async def open_repository(url: str, publish: Callable[[list[Event]], None]) -> SqlRepository:
    """Open (and migrate) the database at `url`, ready for use."""
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {}
    if not is_sqlite:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if is_sqlite:

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets status readers run while the writer commits; NORMAL is durable in WAL
            # against process crashes (what "acknowledged" promises), fsync at checkpoints.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    try:
        async with engine.begin() as conn:
            await conn.run_sync(schema.migrate)
    except schema.SchemaTooNew as exc:
        await engine.dispose()
        raise StorageError(str(exc)) from None
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        await engine.dispose()
        raise StorageError(f"cannot open the database {engine.url!r}: {exc}") from None
    repo = SqlRepository(engine, publish)
    repo.start()
    return repo


class SqlRepository(DispatchStore, ChangeSourceStates):
    def __init__(self, engine: AsyncEngine, publish: Callable[[list[Event]], None]) -> None:
        self.engine = engine
        self.writer = Writer(engine, publish)

    def start(self) -> None:
        self.writer.start()

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.engine.dispose()

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    # ---------------------------------------------------------------- changes

    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float,
        classified: Sequence[Classified] = (),
    ) -> tuple[list[int], bool]:
        def op(tx: Tx) -> tuple[list[int], bool]:
            ids, duplicate = insert_changes(tx, changes, idempotency_key, at)
            if not duplicate:
                scheduler_store.insert_classified(tx.conn, ids, classified, at)
            return ids, duplicate

        return await self.writer.submit(op)

    async def get_change(self, change_id: int) -> Change | None:
        def q(c: sa.Connection) -> Change | None:
            row = c.execute(sa.select(t_changes).where(t_changes.c.id == change_id)).first()
            return None if row is None else codec.change_from_row(row)

        return await self._read(q)

    async def get_changes(self, ids: Sequence[int]) -> list[Change]:
        def q(c: sa.Connection) -> list[Change]:
            rows = c.execute(sa.select(t_changes).where(t_changes.c.id.in_(list(ids))).order_by(t_changes.c.id))
            return [codec.change_from_row(r) for r in rows]

        return await self._read(q) if ids else []

    async def list_changes(self, limit: int) -> list[Change]:
        def q(c: sa.Connection) -> list[Change]:
            rows = c.execute(sa.select(t_changes).order_by(t_changes.c.id.desc()).limit(limit))
            return [codec.change_from_row(r) for r in rows]

        return await self._read(q)

    # ---------------------------------------------------------------- buildsets and requests

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

    # ---------------------------------------------------------------- scheduler state

    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]:
        return await self._read(lambda c: scheduler_store.load(c, names))

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None:
        await self.writer.submit(lambda tx: scheduler_store.set_enabled(tx.conn, name, enabled))

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        return await self.writer.submit(lambda tx: dependent_store.backlog(tx.conn, scheduler, upstream))

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        def op(tx: Tx) -> dict[str, int]:
            dropped = scheduler_store.drop_unconfigured(tx.conn, configured)
            for name in dependent_store.forget(tx.conn, dependents):
                dropped.setdefault(name, 0)
            return dropped

        return await self.writer.submit(op)

    # ---------------------------------------------------------------- builds

    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[Property], at: float,
        step_names: Sequence[str] = (),
    ) -> Build:
        def op(tx: Tx) -> Build:
            c = tx.conn
            number = (c.execute(_LAST_NUMBER, {"b_builder": request.builder}).scalar() or 0) + 1
            props = [*properties, Property("buildnumber", number, "Build")]
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
        properties: list[Property] | None = None,
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
            _maybe_finish_buildset(tx, build.buildset_id, at)

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

    async def set_build_properties(self, build: Build, properties: list[Property]) -> None:
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

    # ---------------------------------------------------------------- build queries

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

    async def pending_counts(self) -> dict[str, int]:
        def q(c: sa.Connection) -> dict[str, int]:
            rows = c.execute(
                sa.select(t_br.c.builder, sa.func.count())
                .where(t_br.c.complete == sa.false(), t_br.c.claimed_by.is_(None))
                .group_by(t_br.c.builder)
            )
            return {r[0]: int(r[1]) for r in rows}

        return await self._read(q)

    # ---------------------------------------------------------------- workers

    async def worker_connected(self, name: str, info: dict[str, str], at: float) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            values = {"info_json": codec.dumps(info), "connected": True, "since": at}
            if c.execute(t_workers.update().where(t_workers.c.name == name).values(values)).rowcount == 0:
                c.execute(t_workers.insert().values(name=name, **values))
            tx.emit(Event(kind="worker.connected", at=at, worker=name, details={"info": info}))

        await self.writer.submit(op)

    async def worker_disconnected(self, name: str, at: float, reason: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(t_workers.update().where(t_workers.c.name == name).values(connected=False, since=at))
            tx.emit(Event(kind="worker.disconnected", at=at, worker=name, details={"reason": reason}))

        await self.writer.submit(op)

    async def list_workers(self) -> list[WorkerRecord]:
        def q(c: sa.Connection) -> list[WorkerRecord]:
            return [
                WorkerRecord(name=r.name, connected=r.connected, since=r.since, max_builds=0,
                             info=json.loads(r.info_json))
                for r in c.execute(sa.select(t_workers).order_by(t_workers.c.name))
            ]

        return await self._read(q)

    # ---------------------------------------------------------------- events

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        def q(c: sa.Connection) -> list[Event]:
            rows = c.execute(
                sa.select(t_events).where(t_events.c.id > since_id).order_by(t_events.c.id).limit(limit)
            )
            return [codec.event_from_row(r) for r in rows]

        return await self._read(q)

    async def last_event_id(self) -> int:
        return await self._read(lambda c: int(c.execute(sa.select(sa.func.max(t_events.c.id))).scalar() or 0))

    async def wait_idle(self) -> None:
        """Wait until everything queued so far is committed (tests and shutdown)."""
        await self.writer.submit(lambda tx: None)

    # ---------------------------------------------------------------- notifications

    async def previous_build_result(self, builder: str, number: int) -> Result | None:
        """The result of the newest complete build of `builder` before `number`, skipping
        RETRY builds (as Buildbot's getPreviousBuild does); None when there is none."""

        def q(c: sa.Connection) -> Result | None:
            r = c.execute(
                sa.select(t_builds.c.result)
                .where(t_builds.c.builder == builder, t_builds.c.number < number,
                       t_builds.c.result.is_not(None), t_builds.c.result != int(Result.RETRY))
                .order_by(t_builds.c.number.desc()).limit(1)
            ).first()
            return None if r is None else Result(r.result)

        return await self._read(q)

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

        return await self._read(q)

    async def get_notifier_cursor(self, name: str) -> int | None:
        t = schema.notifier_state
        return await self._read(
            lambda c: c.execute(sa.select(t.c.last_event_id).where(t.c.name == name)).scalar()
        )

    async def set_notifier_cursor(self, name: str, event_id: int) -> None:
        t = schema.notifier_state

        def op(tx: Tx) -> None:
            if tx.conn.execute(t.update().where(t.c.name == name).values(last_event_id=event_id)).rowcount == 0:
                tx.conn.execute(t.insert().values(name=name, last_event_id=event_id))

        await self.writer.submit(op)

    async def add_notification(
        self, notifier: str, kind: str, key: str, payload: dict[str, Any], at: float
    ) -> bool:
        """Queue a pending notification; False (and nothing stored) when `key` already exists."""
        t = schema.notifications

        def op(tx: Tx) -> bool:
            if tx.conn.execute(sa.select(t.c.id).where(t.c.key == key)).first() is not None:
                return False
            tx.conn.execute(
                t.insert().values(notifier=notifier, kind=kind, key=key, payload_json=codec.dumps(payload),
                                  state="pending", attempts=0, next_attempt_at=at, last_error="",
                                  created_at=at)
            )
            return True

        try:
            return await self.writer.submit(op)
        except sa.exc.IntegrityError:  # another coordinator queued the same key just now
            return False

    async def claim_due_notifications(self, now: float, lease: float, limit: int) -> list[Notification]:
        """Pending notifications due by `now`, each claimed for `lease` seconds (their
        next_attempt_at moves on with one conditional UPDATE, so two coordinators never send the
        same one at once, and one left by a crash is retried once the lease ends)."""
        t = schema.notifications

        def op(tx: Tx) -> list[Notification]:
            c = tx.conn
            rows = c.execute(
                sa.select(t).where(t.c.state == "pending", t.c.next_attempt_at <= now)
                .order_by(t.c.next_attempt_at, t.c.id).limit(limit)
            ).all()
            out = []
            for r in rows:
                res = c.execute(
                    t.update().where(t.c.id == r.id, t.c.state == "pending",
                                     t.c.next_attempt_at == r.next_attempt_at)
                    .values(next_attempt_at=now + lease, attempts=t.c.attempts + 1)
                )
                if res.rowcount == 1:
                    n = _notification_from_row(r)
                    n.attempts += 1
                    n.next_attempt_at = now + lease
                    out.append(n)
            return out

        return await self.writer.submit(op)

    async def notification_sent(self, notification_id: int, at: float) -> None:
        t = schema.notifications

        def op(tx: Tx) -> None:
            tx.conn.execute(t.update().where(t.c.id == notification_id)
                            .values(state="sent", sent_at=at, last_error=""))

        await self.writer.submit(op)

    async def notification_failed(
        self, notification_id: int, error: str, next_attempt_at: float | None
    ) -> None:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (state failed) on None."""
        t = schema.notifications
        values: dict[str, Any] = {"last_error": error[:4000]}
        if next_attempt_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = next_attempt_at

        def op(tx: Tx) -> None:
            tx.conn.execute(t.update().where(t.c.id == notification_id).values(values))

        await self.writer.submit(op)

    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]:
        """Newest first; `state` ("pending", "sent", "failed") filters when given."""
        t = schema.notifications

        def q(c: sa.Connection) -> list[Notification]:
            stmt = sa.select(t).order_by(t.c.id.desc()).limit(limit)
            if state:
                stmt = stmt.where(t.c.state == state)
            return [_notification_from_row(r) for r in c.execute(stmt)]

        return await self._read(q)

    # ---------------------------------------------------------------- artifacts

    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        return await self.writer.submit(artifacts.add(build, step, name, size, sha256, at))

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        return await self._read(lambda c: artifacts.list_for_build(c, builder, number))

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None:
        return await self._read(lambda c: artifacts.get(c, builder, number, name))


def _notification_from_row(r: Any) -> Notification:
    return Notification(
        id=r.id, notifier=r.notifier, kind=r.kind, key=r.key, payload=json.loads(r.payload_json),
        state=r.state, attempts=r.attempts, next_attempt_at=r.next_attempt_at,
        last_error=r.last_error, created_at=r.created_at, sent_at=r.sent_at,
    )


def _maybe_finish_buildset(tx: Tx, buildset_id: int, at: float) -> None:
    c = tx.conn
    rows = c.execute(_REQUESTS_OF_BUILDSET, {"b_id": buildset_id}).all()
    if not all(r.complete for r in rows):
        return
    result = Result.SUCCESS
    for r in rows:
        result = worst(result, Result(r.result))
    c.execute(_UPDATE_BUILDSET, {"b_id": buildset_id, "complete": True, "result": int(result), "completed_at": at})
    tx.emit(Event(kind="buildset.finished", at=at, buildset_id=buildset_id, result=result))


def _insert_steps(c: sa.Connection, build: Build, names: Sequence[str]) -> list[Step]:
    out = []
    for i, name in enumerate(names):
        step_id = c.execute(
            _INSERT_STEP, {"build_id": build.id, "number": i, "name": name, "state_string": "pending"}
        ).inserted_primary_key[0]  # type: ignore[index]
        out.append(Step(id=int(step_id), build_id=build.id, number=i, name=name))
    return out
