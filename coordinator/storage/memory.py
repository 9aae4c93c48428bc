"""Storage in memory: every storage port of coordinator/domain/ports.py, with the SQL stores' semantics.

What it is for: the domain's tests (nothing to set up, nothing to clean), and the storage contract
tests (tests/coordinator/test_storage_contract.py), which run the same cases on it, on SQLite and on
PostgreSQL. So it is also the reference implementation of the ports, in plain Python: what it does
is what the SQL stores do, and the contract tests hold both to it.

How it mirrors a database:
- `MemoryData` holds the tables (dicts of rows, keyed as the SQL tables are) and the event log.
  `MemoryStorage` has the shape of `SqlStorage`: one store per concept, all on one `MemoryData`;
  two `MemoryStorage` on the same `MemoryData` are two coordinators sharing a database.
- Every write yields to the loop once, then applies its whole change synchronously in a `_Tx`:
  either all of it commits (its events get the next ids and are published, as the SQL writer
  publishes after its commit) or, when it raises, none of it (the transaction's undo log).
- Values SQL stores as JSON go through JSON here too (tuples come back as lists, what JSON cannot
  hold is refused), and reads return fresh objects, never the stored rows: callers may mutate what
  they get, as they may with what SQL returns.
- Not mirrored: foreign keys and the unique constraints other than the primary keys (a build's step
  numbers, a step's log names, a log's chunk sequence numbers), and log compression.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from coordinator.domain.builds.lookup import step_number
from coordinator.domain.errors import AlreadyScheduled, FailedPrecondition
from coordinator.domain.events import Event
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Buildset,
    CaseResult,
    CaseRun,
    Change,
    Classified,
    JournalEntry,
    LogChunk,
    LogInfo,
    NewBuildset,
    PendingChange,
    PropertyValue,
    SchedulerCommit,
    SchedulerRecord,
    SourceStamp,
    Step,
    StepSample,
    WorkerHold,
    WorkerRecord,
)
from coordinator.domain.ports import Ledger, Notification
from coordinator.domain.results import Result
from coordinator.storage.memory_retention import MemoryRetention

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_OK = (Result.SUCCESS, Result.WARNINGS)


# ---------------------------------------------------------------- the tables


@dataclass
class RequestRow:
    """A build request as stored: who claimed it, and when (BuildRequest only says whether)."""

    id: int
    buildset_id: int
    builder: str
    priority: int
    submitted_at: float
    claimed_by: str | None = None
    claimed_at: float | None = None
    complete: bool = False
    result: Result | None = None
    completed_at: float | None = None


@dataclass(frozen=True)
class _Classification:
    """A change a scheduler took and has not built yet (scheduler_changes)."""

    key: str
    important: bool
    classified_at: float


@dataclass
class _SchedulerRow:
    enabled: bool = True
    last_run: float | None = None


@dataclass(frozen=True)
class _ArtifactRow:
    build_id: int
    step_id: int
    name: str
    size: int
    sha256: str
    created_at: float


class MemoryData:
    """The tables of one in-memory database, and its event log (event i has id i)."""

    def __init__(self) -> None:
        self.changes: dict[int, Change] = {}
        self.idempotency_keys: dict[str, list[int]] = {}
        self.change_source_state: dict[str, dict[str, str]] = {}
        self.scheduler_changes: dict[tuple[str, int], _Classification] = {}  # (scheduler, change id)
        self.scheduler_state: dict[str, _SchedulerRow] = {}
        self.dependent_state: dict[str, int] = {}  # Dependent -> since
        self.dependent_buildsets: dict[tuple[str, int], int | None] = {}  # (Dependent, upstream) -> downstream
        self.buildsets: dict[int, Buildset] = {}
        self.buildrequests: dict[int, RequestRow] = {}
        self.collapses: dict[int, int] = {}  # request id -> the request that absorbed it
        self.builds: dict[int, Build] = {}  # rows: no steps, changes, source stamps or artifacts
        self.build_ids: dict[tuple[str, int], int] = {}  # (builder, number) -> build id
        self.steps: dict[int, Step] = {}  # rows: no logs
        self.logs: dict[int, LogInfo] = {}
        self.logchunks: dict[int, dict[int, LogChunk]] = {}  # log id -> seq -> chunk
        self.artifacts: dict[int, _ArtifactRow] = {}
        self.test_cases: dict[int, tuple[int, str, CaseResult]] = {}  # id -> (build id, revision, case)
        self.workers: dict[str, WorkerRecord] = {}
        self.worker_holds: dict[str, WorkerHold] = {}
        self.step_journal: dict[tuple[int, int, int], JournalEntry] = {}  # (build, step, index)
        self.notifications: dict[int, Notification] = {}
        self.notifier_state: dict[str, int] = {}
        self.events: list[Event] = []  # ids events_pruned + 1, + 2, ...
        self.events_pruned = 0  # retention deleted the events up to this id
        self._ids: dict[str, itertools.count[int]] = {}

    def new_id(self, table: str) -> int:
        """The table's next id (like a sequence, not given back when the transaction fails)."""
        return next(self._ids.setdefault(table, itertools.count(1)))


class _Tx:
    """One write: changes the tables through it, undone in reverse order if the write raises."""

    def __init__(self, data: MemoryData) -> None:
        self.data = data
        self.events: list[Event] = []
        self._undo: list[Callable[[], object]] = []

    def put(self, table: dict[K, V], key: K, value: V) -> None:
        if key in table:
            old = table[key]
            self._undo.append(lambda: table.__setitem__(key, old))
        else:
            self._undo.append(lambda: table.pop(key))
        table[key] = value

    def delete(self, table: dict[K, V], key: K) -> None:
        old = table.pop(key)
        self._undo.append(lambda: table.__setitem__(key, old))

    def update(self, row: object | None, **values: Any) -> None:
        """Set columns of a row; no row is a no-op (an UPDATE matching nothing)."""
        if row is None:
            return
        old = {name: getattr(row, name) for name in values}

        def undo() -> None:
            for name, value in old.items():
                setattr(row, name, value)

        self._undo.append(undo)
        for name, value in values.items():
            setattr(row, name, value)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def emit_all(self, events: Iterable[Event]) -> None:
        self.events.extend(events)

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class _Db:
    """What every memory store shares: the data, and the one way to write it."""

    def __init__(self, data: MemoryData, publish: Callable[[list[Event]], None]) -> None:
        self.data = data
        self.publish = publish
        self.closed = False

    async def write(self, fn: Callable[[_Tx], T]) -> T:
        if self.closed:
            raise RuntimeError("storage is closed")
        await asyncio.sleep(0)  # yield as a real store's writer does: concurrent writes really interleave
        return self.apply(fn)

    def apply(self, fn: Callable[[_Tx], T]) -> T:
        """Run `fn` as one transaction: commit it and publish its events, or undo it all."""
        tx = _Tx(self.data)
        try:
            result = fn(tx)
            # The log keeps what SQL reads back: details through JSON (refused in the transaction, as there).
            logged = [replace(e, details=_json(e.details)) for e in tx.events]
        except BaseException:
            tx.rollback()
            raise
        first = self.data.events_pruned + len(self.data.events) + 1
        self.data.events.extend(e.with_id(i) for i, e in enumerate(logged, start=first))
        if tx.events:
            self.publish([e.with_id(i) for i, e in enumerate(tx.events, start=first)])
        return result


# ---------------------------------------------------------------- storage


class MemoryStorage:
    """The stores, by concept, as on SqlStorage; `data` may be shared with another MemoryStorage."""

    def __init__(
        self, publish: Callable[[list[Event]], None] | None = None, *, data: MemoryData | None = None
    ) -> None:
        self.data = data if data is not None else MemoryData()
        self._db = _Db(self.data, publish or _publish_nowhere)
        self.changes = MemoryChanges(self._db)
        self.buildsets = MemoryBuildsets(self._db)
        self.book = MemoryBookkeeper(self._db)
        self.builds = MemoryBuilds(self._db)
        self.logs = MemoryLogs(self._db)
        self.journal = MemoryJournal(self._db)
        self.schedulers = MemorySchedulers(self._db)
        self.workers = MemoryWorkers(self._db)
        self.events = MemoryEventLog(self._db)
        self.outbox = MemoryOutbox(self._db)
        self.retention = MemoryRetention(self._db)

    async def aclose(self) -> None:
        """Refuse further writes (the data stays, for another MemoryStorage on it)."""
        self._db.closed = True


def _publish_nowhere(events: list[Event]) -> None:
    pass


# ---------------------------------------------------------------- changes and change sources


class MemoryChanges:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float,
        classified: Sequence[Classified], events: Callable[[list[Change]], list[Event]],
    ) -> tuple[list[int], bool]:
        def op(tx: _Tx) -> tuple[list[int], bool]:
            ids, duplicate = _insert_changes(tx, changes, idempotency_key, at, events)
            if not duplicate:
                _insert_classified(tx, ids, classified, at)
            return ids, duplicate

        return await self.db.write(op)

    async def get_change(self, change_id: int) -> Change | None:
        return _copy_or_none(self.data.changes.get(change_id))

    async def list_changes(self, limit: int) -> list[Change]:
        return [copy.deepcopy(self.data.changes[i]) for i in sorted(self.data.changes, reverse=True)[:limit]]

    async def get_change_source_state(self, name: str) -> dict[str, str] | None:
        state = self.data.change_source_state.get(name)
        return None if state is None else dict(state)

    async def add_polled_changes(
        self, name: str, changes: Sequence[Change], state: dict[str, str], at: float,
        previous: dict[str, str] | None, classified: Sequence[Classified],
        events: Callable[[list[Change]], list[Event]],
    ) -> list[int]:
        def op(tx: _Tx) -> list[int]:
            stored = self.data.change_source_state.get(name)
            if stored != (None if previous is None else _json(previous)):
                raise FailedPrecondition(f"{name}: its state changed meanwhile (polled elsewhere)")
            tx.put(self.data.change_source_state, name, _json(state))
            ids = _insert_changes(tx, changes, "", at, events)[0] if changes else []
            _insert_classified(tx, ids, classified, at)
            return ids

        return await self.db.write(op)


def _insert_changes(
    tx: _Tx, changes: Sequence[Change], idempotency_key: str, at: float,
    events: Callable[[list[Change]], list[Event]],
) -> tuple[list[int], bool]:
    data = tx.data
    if idempotency_key and idempotency_key in data.idempotency_keys:
        return list(data.idempotency_keys[idempotency_key]), True
    stored = []
    for ch in changes:
        row = replace(ch, id=data.new_id("changes"), files=_json(ch.files), properties=_json(ch.properties))
        tx.put(data.changes, row.id, row)
        stored.append(copy.deepcopy(row))
    tx.emit_all(events(stored))
    ids = [ch.id for ch in stored]
    if idempotency_key:
        tx.put(data.idempotency_keys, idempotency_key, ids)
    return list(ids), False


def _insert_classified(tx: _Tx, ids: Sequence[int], classified: Sequence[Classified], at: float) -> None:
    for c in classified:
        tx.put(tx.data.scheduler_changes, (c.scheduler, ids[c.index]), _Classification(c.key, c.important, at))


# ---------------------------------------------------------------- buildsets and requests


class MemoryBuildsets:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def add_buildset(
        self, bs: NewBuildset | None, at: float, commit: SchedulerCommit | None,
        events: Callable[[int, list[BuildRequest]], list[Event]],
    ) -> tuple[int, dict[str, int]]:
        def op(tx: _Tx) -> tuple[int, dict[str, int]]:
            data = self.data
            upstream = commit.upstream_buildset_id if commit is not None else 0
            if commit is not None:
                _apply_commit(tx, commit)
                if upstream and (commit.scheduler, upstream) in data.dependent_buildsets:
                    raise AlreadyScheduled(
                        f"scheduler {commit.scheduler!r} already handled upstream buildset {upstream}")
            if bs is None:
                if commit is not None and upstream:
                    tx.put(data.dependent_buildsets, (commit.scheduler, upstream), None)
                return 0, {}
            bs_id = data.new_id("buildsets")
            tx.put(data.buildsets, bs_id, Buildset(
                id=bs_id, reason=bs.reason, scheduler=bs.scheduler, submitted_at=at,
                sourcestamps=list(bs.sourcestamps), properties=_props(bs.properties),
                change_ids=_json(bs.change_ids),
            ))
            if commit is not None and upstream:
                tx.put(data.dependent_buildsets, (commit.scheduler, upstream), bs_id)
            requests = []
            for builder in bs.builders:
                row = RequestRow(id=data.new_id("buildrequests"), buildset_id=bs_id, builder=builder,
                                 priority=bs.priority, submitted_at=at)
                tx.put(data.buildrequests, row.id, row)
                requests.append(BuildRequest(id=row.id, buildset_id=bs_id, builder=builder,
                                             priority=bs.priority, submitted_at=at))
            tx.emit_all(events(bs_id, requests))
            req_ids = {r.builder: r.id for r in requests}
            if commit is not None and commit.journal is not None:  # a Trigger step's
                e = commit.journal.with_buildset(bs_id, req_ids)
                tx.put(data.step_journal, (e.build_id, e.step_number, e.index), e)
            return bs_id, req_ids

        return await self.db.write(op)

    async def get_buildset(self, buildset_id: int) -> Buildset | None:
        return _copy_or_none(self.data.buildsets.get(buildset_id))

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]:
        found = (self.data.buildsets.get(i) for i in buildset_ids)
        return {bs.id: copy.deepcopy(bs) for bs in found if bs is not None}

    async def unclaimed_requests(self) -> list[BuildRequest]:
        return [
            BuildRequest(id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
                         submitted_at=r.submitted_at)
            for _, r in sorted(self.data.buildrequests.items())
            if not r.complete and r.claimed_by is None
        ]

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool:
        def op(tx: _Tx) -> bool:
            row = self.data.buildrequests.get(request_id)
            if row is None or row.claimed_by is not None or row.complete:
                return False
            tx.update(row, claimed_by=coordinator_id, claimed_at=at)
            return True

        return await self.db.write(op)

    async def list_build_requests(
        self, builder: str, buildset_id: int, limit: int, *, among: Collection[str] | None = None
    ) -> list[BuildRequest]:
        rows = [
            r for _, r in sorted(self.data.buildrequests.items(), reverse=True)
            if (not builder or r.builder == builder) and (not buildset_id or r.buildset_id == buildset_id)
            and (among is None or r.builder in among)
        ]
        return [_request(self.data, r) for r in rows[:limit]]

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        return await self.db.write(lambda tx: _backlog(tx, scheduler, upstream))


def _request(data: MemoryData, r: RequestRow) -> BuildRequest:
    return BuildRequest(
        id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
        submitted_at=r.submitted_at, claimed=r.claimed_by is not None, complete=r.complete, result=r.result,
        absorbed_by=data.collapses.get(r.id, 0), completed_at=r.completed_at,
    )


def _apply_commit(tx: _Tx, commit: SchedulerCommit) -> None:
    """Consume the changes and move last_run forward, or refuse it all (AlreadyScheduled)."""
    data = tx.data
    keys = [(commit.scheduler, i) for i in sorted(set(commit.change_ids))]
    if any(k not in data.scheduler_changes for k in keys):
        ids = [i for _, i in keys]
        raise AlreadyScheduled(f"changes {ids} were already built by scheduler {commit.scheduler!r}")
    for k in keys:
        tx.delete(data.scheduler_changes, k)
    if commit.last_run is not None:
        row = data.scheduler_state.get(commit.scheduler)
        if row is None:
            tx.put(data.scheduler_state, commit.scheduler, _SchedulerRow(enabled=True, last_run=commit.last_run))
        elif row.last_run is None or row.last_run < commit.last_run:
            tx.update(row, last_run=commit.last_run)
        else:
            raise AlreadyScheduled(f"scheduler {commit.scheduler!r} already ran for time {commit.last_run}")


def _backlog(tx: _Tx, scheduler: str, upstream: str) -> list[Buildset]:
    """dependent_store.backlog: move the Dependent's watermark up to its first unresolved upstream
    buildset (pruning what is below), then the upstream buildsets that ended SUCCESS/WARNINGS above
    it with no downstream yet, oldest first. Seen for the first time: start at the newest buildset."""
    data = tx.data
    since = data.dependent_state.get(scheduler)
    if since is None:
        tx.put(data.dependent_state, scheduler, max(data.buildsets, default=0))
        return []

    def made(bs: Buildset) -> bool:
        return (scheduler, bs.id) in data.dependent_buildsets

    def ok(bs: Buildset) -> bool:
        return bs.complete and bs.result in _OK

    mine = [bs for _, bs in sorted(data.buildsets.items()) if bs.scheduler == upstream and bs.id > since]
    first_open = next((bs.id for bs in mine if not bs.complete or (ok(bs) and not made(bs))), None)
    if first_open is not None:
        new_since = first_open - 1
    else:
        new_since = mine[-1].id if mine else since
    if new_since > since:
        tx.put(data.dependent_state, scheduler, new_since)
        for key in [k for k in data.dependent_buildsets if k[0] == scheduler and k[1] <= new_since]:
            tx.delete(data.dependent_buildsets, key)
    return [copy.deepcopy(bs) for bs in mine if bs.id > new_since and ok(bs) and not made(bs)]


# ---------------------------------------------------------------- bookkeeping


class MemoryBookkeeper:
    def __init__(self, db: _Db) -> None:
        self.db = db

    async def record(self, decide: Callable[[Ledger], T]) -> T:
        return await self.db.write(lambda tx: decide(MemoryLedger(tx)))


class MemoryLedger:
    """The domain's Ledger over one memory transaction: reads and writes rows, decides nothing."""

    def __init__(self, tx: _Tx) -> None:
        self.tx = tx
        self.data = tx.data

    def requests(self, request_ids: Sequence[int]) -> dict[int, BuildRequest]:
        rows = (self.data.buildrequests.get(i) for i in sorted(set(request_ids)))
        return {r.id: _request(self.data, r) for r in rows if r is not None}

    def request_results(self, buildset_id: int) -> list[Result | None]:
        rows = self.data.buildrequests.values()
        return [r.result if r.complete else None for r in rows if r.buildset_id == buildset_id]

    def complete_request(self, request_id: int, result: Result, at: float, *, unclaimed_only: bool) -> bool:
        row = self.data.buildrequests.get(request_id)
        if row is None or (unclaimed_only and (row.claimed_by is not None or row.complete)):
            return False
        self.tx.update(row, complete=True, result=result, completed_at=at)
        return True

    def unclaim_request(self, request_id: int) -> None:
        self.tx.update(self.data.buildrequests.get(request_id), claimed_by=None, claimed_at=None)

    def unclaim_all(self, coordinator_id: str, keep: Collection[int] = ()) -> int:
        mine = [
            r for r in self.data.buildrequests.values()
            if r.claimed_by == coordinator_id and not r.complete and r.id not in keep
        ]
        for row in mine:
            self.tx.update(row, claimed_by=None, claimed_at=None)
        return len(mine)

    def record_collapse(self, request_id: int, into_id: int, at: float) -> None:
        self.tx.put(self.data.collapses, request_id, into_id)

    def complete_buildset(self, buildset_id: int, result: Result, at: float) -> None:
        self.tx.update(self.data.buildsets.get(buildset_id), complete=True, result=result)

    def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, properties: list[PropertyValue] | None
    ) -> None:
        values: dict[str, Any] = {"finished_at": at, "result": result, "state_string": state_string}
        if properties is not None:
            values["properties"] = _props(properties)
        self.tx.update(self.data.builds.get(build.id), **values)

    def running_builds(self, coordinator_id: str) -> list[Build]:
        requests = self.data.buildrequests
        return [
            copy.deepcopy(b) for _, b in sorted(self.data.builds.items())
            if b.finished_at is None and (r := requests.get(b.build_request_id)) is not None
            and r.claimed_by == coordinator_id
        ]

    def end_running_steps(self, build: Build, result: Result, state_string: str, at: float) -> None:
        for step in self.data.steps.values():
            if step.build_id == build.id and step.finished_at is None and step.started_at is not None:
                self.tx.update(step, finished_at=at, result=result, state_string=state_string)

    def emit(self, event: Event) -> None:
        self.tx.emit(event)


# ---------------------------------------------------------------- builds, steps, artifacts


class MemoryBuilds:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str], events: Callable[[Build], list[Event]],
    ) -> Build:
        def op(tx: _Tx) -> Build:
            data = self.data
            number = max((n for b, n in data.build_ids if b == request.builder), default=0) + 1
            props = [*properties, PropertyValue("buildnumber", number, "Build")]
            build = Build(
                id=data.new_id("builds"), builder=request.builder, number=number, worker=worker,
                build_request_id=request.id, buildset_id=request.buildset_id, started_at=at, properties=props,
            )
            row = copy.deepcopy(build)  # the caller gets `build`: the stored row must not be it
            row.properties = _props(props)
            tx.put(data.builds, build.id, row)
            tx.put(data.build_ids, (build.builder, number), build.id)
            if step_names:
                build.steps = _insert_steps(tx, build, step_names)
            tx.emit_all(events(build))
            return build

        return await self.db.write(op)

    async def add_steps(self, build: Build, names: Sequence[str], first: int = 0) -> list[Step]:
        return await self.db.write(lambda tx: _insert_steps(tx, build, names, first))

    async def start_step(self, build: Build, step: Step, at: float, events: Sequence[Event]) -> None:
        await self._update(self.data.steps, step.id, events, started_at=at, state_string="running")

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float,
        logs: Sequence[int], events: Sequence[Event], properties: Sequence[PropertyValue] | None = None,
    ) -> None:
        def op(tx: _Tx) -> None:
            for log_id in logs:
                tx.update(self.data.logs.get(log_id), complete=True)
            if properties is not None:
                tx.update(self.data.builds.get(build.id), properties=_props(properties))
            tx.update(self.data.steps.get(step.id), started_at=step.started_at, finished_at=at, result=result,
                      state_string=state_string, hidden=step.hidden, urls=_urls(step.urls))
            tx.emit_all(events)

        await self.db.write(op)

    async def set_step_urls(self, step: Step, events: Sequence[Event]) -> None:
        await self._update(self.data.steps, step.id, events, urls=_urls(step.urls))

    async def set_build_state(self, build: Build, state_string: str, events: Sequence[Event]) -> None:
        await self._update(self.data.builds, build.id, events, state_string=state_string)

    async def set_step_state(self, step: Step, state_string: str, events: Sequence[Event]) -> None:
        await self._update(self.data.steps, step.id, events, state_string=state_string)

    async def _update(self, table: dict[int, Any], row_id: int, events: Sequence[Event], **values: Any) -> None:
        def op(tx: _Tx) -> None:
            tx.update(table.get(row_id), **values)
            tx.emit_all(events)

        await self.db.write(op)

    # ---------------------------------------------------------------- artifacts

    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        def op(tx: _Tx) -> Artifact:
            table = self.data.artifacts
            for art_id in [i for i, a in table.items() if a.build_id == build.id and a.name == name]:
                tx.delete(table, art_id)
            tx.put(table, self.data.new_id("artifacts"), _ArtifactRow(build.id, step.id, name, size, sha256, at))
            return Artifact(build.builder, build.number, step.name, name, size, sha256, at)

        return await self.db.write(op)

    # ---------------------------------------------------------------- test cases

    async def add_test_results(
        self, build: Build, step: Step, revision: str, cases: Sequence[CaseResult], journal: Sequence[JournalEntry] = ()
    ) -> None:
        def op(tx: _Tx) -> None:
            for case in cases:
                tx.put(self.data.test_cases, self.data.new_id("test_cases"), (build.id, revision, case))
            for e in journal:
                tx.put(self.data.step_journal, (e.build_id, e.step_number, e.index), e)

        await self.db.write(op)

    async def case_runs(self, builder: str, builds: int, names: Sequence[str] | None = None) -> list[CaseRun]:
        data = self.data
        recorded = {build_id for build_id, _, _ in data.test_cases.values()}
        recent = sorted(
            (b for i, b in data.builds.items() if i in recorded and b.builder == builder), key=lambda b: -b.number
        )[:builds]
        numbers = {b.id: b.number for b in recent}
        wanted = None if names is None else set(names)
        runs = [
            CaseRun(numbers[build_id], revision, case)
            for _, (build_id, revision, case) in sorted(data.test_cases.items())
            if build_id in numbers and (wanted is None or case.full_name in wanted)
        ]
        return sorted(runs, key=lambda r: -r.number)

    async def failing_cases(self, builder: str, number: int, limit: int) -> list[CaseResult]:
        build_id = self.data.build_ids.get((builder, number))
        cases = [case for _, (b, _, case) in sorted(self.data.test_cases.items()) if b == build_id and case.failed]
        return cases[:limit]

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        build_id = self.data.build_ids.get((builder, number))
        return [] if build_id is None else _artifacts(self.data, build_id)

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None:
        return next((a for a in await self.list_artifacts(builder, number) if a.name == name), None)

    # ---------------------------------------------------------------- reads

    async def get_build(self, builder: str, number: int) -> Build | None:
        data = self.data
        build_id = data.build_ids.get((builder, number))
        if build_id is None:
            return None
        build = copy.deepcopy(data.builds[build_id])
        build.steps = [copy.deepcopy(s) for s in _steps_of(data, build_id)]
        by_id = {s.id: s for s in build.steps}
        for _, lg in sorted(data.logs.items()):
            if lg.step_id in by_id:
                by_id[lg.step_id].logs.append(copy.deepcopy(lg))
        bs = data.buildsets.get(build.buildset_id)
        if bs is not None:
            build.reason = bs.reason
            build.sourcestamps = list(bs.sourcestamps)
            build.changes = [copy.deepcopy(data.changes[i]) for i in sorted(set(bs.change_ids)) if i in data.changes]
        build.artifacts = _artifacts(data, build_id)
        return build

    async def list_builds(
        self, builder: str, limit: int, *, before_id: int = 0, results: Sequence[Result] = (),
        with_steps: bool = False, branch: str = "", among: Collection[str] | None = None,
    ) -> list[Build]:
        newest_first = (b for _, b in sorted(self.data.builds.items(), reverse=True))
        out = [
            copy.deepcopy(b) for b in newest_first
            if (not builder or b.builder == builder) and (not before_id or b.id < before_id)
            and (among is None or b.builder in among)
            and (not results or (b.result in results and b.complete))
            and (not branch or any(ss.branch == branch for ss in _stamps_of(self.data, b.buildset_id)))
        ][:limit]
        for b in out:
            b.steps = [copy.deepcopy(s) for s in _steps_of(self.data, b.id)] if with_steps else []
        return out

    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        recent = sorted(
            (b for b in self.data.builds.values()
             if b.builder == builder and b.result == Result.SUCCESS and b.finished_at is not None),
            key=lambda b: b.number, reverse=True,
        )[:builds]
        samples = []
        for b in recent:
            duration = float(cast(float, b.finished_at) - b.started_at)
            ran = 0
            for s in _steps_of(self.data, b.id):
                if s.started_at is not None and s.finished_at is not None:
                    samples.append(StepSample(b.number, duration, s.name, float(s.finished_at - s.started_at)))
                    ran += 1
            if not ran:  # a build without a step that ran still appears once
                samples.append(StepSample(b.number, duration, "", None))
        return samples

    async def previous_build_result(self, builder: str, number: int) -> Result | None:
        """The result of the newest complete build of `builder` before `number`, skipping RETRY
        and CANCELLED."""
        done = [
            b for b in self.data.builds.values()
            if b.builder == builder and b.number < number and b.result is not None
            and b.result not in (Result.RETRY, Result.CANCELLED)
        ]
        return max(done, key=lambda b: b.number).result if done else None

    async def builds_of_buildset(self, buildset_id: int) -> list[tuple[str, int]]:
        """(builder, number) of the newest build of each of the buildset's requests."""
        newest: dict[tuple[str, int], int] = {}
        for b in self.data.builds.values():
            if b.buildset_id == buildset_id:
                key = (b.builder, b.build_request_id)
                newest[key] = max(newest.get(key, 0), b.number)
        return [(builder, number) for (builder, _), number in sorted(newest.items())]


def _insert_steps(tx: _Tx, build: Build, names: Sequence[str], first: int = 0) -> list[Step]:
    steps = [
        Step(id=tx.data.new_id("steps"), build_id=build.id, number=i, name=name) for i, name in enumerate(names, first)
    ]
    for step in steps:
        tx.put(tx.data.steps, step.id, copy.deepcopy(step))
    return steps


def _stamps_of(data: MemoryData, buildset_id: int) -> list[SourceStamp]:
    bs = data.buildsets.get(buildset_id)
    return [] if bs is None else bs.sourcestamps


def _steps_of(data: MemoryData, build_id: int) -> list[Step]:
    return sorted((s for s in data.steps.values() if s.build_id == build_id), key=lambda s: s.number)


def _artifacts(data: MemoryData, build_id: int) -> list[Artifact]:
    build = data.builds[build_id]
    return [
        Artifact(build.builder, build.number, data.steps[a.step_id].name, a.name, a.size, a.sha256, a.created_at)
        for _, a in sorted(data.artifacts.items()) if a.build_id == build_id and a.step_id in data.steps
    ]


# ---------------------------------------------------------------- logs


class MemoryLogs:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def add_log(self, step: Step, name: str, type_: str, journal: Sequence[JournalEntry] = ()) -> LogInfo:
        def op(tx: _Tx) -> LogInfo:
            info = LogInfo(id=self.data.new_id("logs"), step_id=step.id, name=name, type=type_)
            tx.put(self.data.logs, info.id, copy.deepcopy(info))
            for e in journal:
                tx.put(self.data.step_journal, (e.build_id, e.step_number, e.index), e)
            return info

        return await self.db.write(op)

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        """Stored on the loop's next turn (a write's one yield), in call order; the future says when."""
        if self.db.closed:
            raise RuntimeError("storage is closed")
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()

        def op(tx: _Tx) -> None:
            info = self.data.logs.get(log_id)
            if info is None:
                raise LookupError(f"no log {log_id}")
            chunks = self.data.logchunks.setdefault(log_id, {})
            tx.put(chunks, seq, LogChunk(chunk.channel, bytes(chunk.data), chunk.offset, chunk.channel_offset,
                                         tuple(chunk.marks)))
            tx.update(info, size=info.size + len(chunk.data))

        def apply() -> None:
            try:
                self.db.apply(op)
            except Exception as exc:
                stored.set_exception(exc)
            else:
                stored.set_result(None)

        loop.call_soon(apply)
        return stored

    async def finish_log(self, log_id: int) -> None:
        def op(tx: _Tx) -> None:
            tx.update(self.data.logs.get(log_id), complete=True)

        await self.db.write(op)

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]:
        """Chunks covering [offset, offset+limit) of the log, or of one channel when channel>0."""
        out = []
        for _, c in sorted(self.data.logchunks.get(log_id, {}).items()):
            if channel and c.channel != channel:
                continue
            pos = c.channel_offset if channel else c.offset
            if pos + len(c.data) > offset and pos < offset + limit:
                out.append(LogChunk(c.channel, c.data, c.offset, c.channel_offset, c.marks))
        return out

    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None:
        build_id = self.data.build_ids.get((builder, number))
        if build_id is None:
            return None

        def named(s: Step) -> bool:
            n = step_number(step)
            return s.name == step if n is None else s.number == n

        steps = {s.id for s in _steps_of(self.data, build_id) if named(s)}
        found = (lg for _, lg in sorted(self.data.logs.items()) if lg.step_id in steps and lg.name == log_name)
        return _copy_or_none(next(found, None))

    async def get_log_info(self, log_id: int) -> LogInfo | None:
        return _copy_or_none(self.data.logs.get(log_id))


# ---------------------------------------------------------------- scheduler state


class MemorySchedulers:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]:
        """The stored state of the named schedulers (defaults for the ones never stored)."""
        out = {n: SchedulerRecord(name=n) for n in names}
        for name, record in out.items():
            row = self.data.scheduler_state.get(name)
            if row is not None:
                record.enabled, record.last_run = row.enabled, row.last_run
        for (scheduler, change_id), c in sorted(self.data.scheduler_changes.items(), key=lambda kv: kv[0][1]):
            change = self.data.changes.get(change_id)
            if scheduler in out and change is not None:
                out[scheduler].pending.append(
                    PendingChange(copy.deepcopy(change), c.key, c.important, c.classified_at))
        return out

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None:
        def op(tx: _Tx) -> None:
            row = self.data.scheduler_state.get(name)
            if row is None:
                tx.put(self.data.scheduler_state, name, _SchedulerRow(enabled=enabled))
            else:
                tx.update(row, enabled=enabled)

        await self.db.write(op)

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        """Drop the pending changes of schedulers not in `configured` (their enabled flag and last
        run stay) and the bookkeeping of Dependents not in `dependents`: {scheduler: dropped}."""

        def op(tx: _Tx) -> dict[str, int]:
            data = self.data
            dropped: dict[str, int] = {}
            for key in [k for k in data.scheduler_changes if k[0] not in configured]:
                dropped[key[0]] = dropped.get(key[0], 0) + 1
                tx.delete(data.scheduler_changes, key)
            for name in [n for n in data.dependent_state if n not in dependents]:
                for key in [k for k in data.dependent_buildsets if k[0] == name]:
                    tx.delete(data.dependent_buildsets, key)
                tx.delete(data.dependent_state, name)
                dropped.setdefault(name, 0)
            return dropped

        return await self.db.write(op)


# ---------------------------------------------------------------- workers


class MemoryWorkers:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def worker_connected(self, name: str, info: dict[str, str], at: float, events: Sequence[Event]) -> None:
        def op(tx: _Tx) -> None:
            row = self.data.workers.get(name)
            if row is None:
                tx.put(self.data.workers, name, WorkerRecord(name, True, at, 0, _json(info)))
            else:
                tx.update(row, info=_json(info), connected=True, since=at)
            tx.emit_all(events)

        await self.db.write(op)

    async def worker_disconnected(self, name: str, at: float, events: Sequence[Event]) -> None:
        def op(tx: _Tx) -> None:
            tx.update(self.data.workers.get(name), connected=False, since=at)
            tx.emit_all(events)

        await self.db.write(op)

    async def list_workers(self) -> list[WorkerRecord]:
        return [copy.deepcopy(w) for _, w in sorted(self.data.workers.items())]

    async def reset_connections(self) -> None:
        """At start-up: no worker is connected to a coordinator that was not running."""

        def op(tx: _Tx) -> None:
            for row in self.data.workers.values():
                tx.update(row, connected=False)

        await self.db.write(op)

    async def load_worker_holds(self) -> dict[str, WorkerHold]:
        return copy.deepcopy(self.data.worker_holds)

    async def set_worker_hold(self, name: str, hold: WorkerHold | None, events: Sequence[Event]) -> None:
        def op(tx: _Tx) -> None:
            if hold is not None:
                tx.put(self.data.worker_holds, name, copy.copy(hold))
            elif name in self.data.worker_holds:
                tx.delete(self.data.worker_holds, name)
            tx.emit_all(events)

        await self.db.write(op)


class MemoryJournal:
    """The running steps' command journals."""

    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def record_journal(self, entries: Sequence[JournalEntry]) -> None:
        def op(tx: _Tx) -> None:
            for e in entries:
                tx.put(self.data.step_journal, (e.build_id, e.step_number, e.index), e)

        await self.db.write(op)

    async def step_journal(self, build_id: int, step_number: int) -> list[JournalEntry]:
        table = self.data.step_journal
        return [e for key, e in sorted(table.items()) if key[:2] == (build_id, step_number)]


# ---------------------------------------------------------------- events


class MemoryEventLog:
    def __init__(self, db: _Db) -> None:
        self.data = db.data

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        start = max(since_id - self.data.events_pruned, 0)  # event i is at index i - 1 - pruned
        return copy.deepcopy(self.data.events[start : start + max(limit, 0)])

    async def last_event_id(self) -> int:
        return self.data.events_pruned + len(self.data.events)

    async def pruned_through(self) -> int:
        return self.data.events_pruned


# ---------------------------------------------------------------- notifications


class MemoryOutbox:
    """The notifications' outbox and the notifiers' event cursors."""

    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    async def get_notifier_cursor(self, name: str) -> int | None:
        return self.data.notifier_state.get(name)

    async def set_notifier_cursor(self, name: str, event_id: int) -> None:
        await self.db.write(lambda tx: tx.put(self.data.notifier_state, name, event_id))

    async def add_notification(self, notifier: str, kind: str, key: str, payload: dict[str, Any], at: float) -> bool:
        """Queue a pending notification; False (and nothing stored) when `key` already exists."""

        def op(tx: _Tx) -> bool:
            if any(n.key == key for n in self.data.notifications.values()):
                return False
            n = Notification(id=self.data.new_id("notifications"), notifier=notifier, kind=kind, key=key,
                             payload=_json(payload), state="pending", attempts=0, next_attempt_at=at,
                             last_error="", created_at=at)
            tx.put(self.data.notifications, n.id, n)
            return True

        return await self.db.write(op)

    async def claim_due_notifications(self, now: float, lease: float, limit: int) -> list[Notification]:
        """Pending notifications due by `now`, oldest due first, each leased for `lease` seconds."""

        def op(tx: _Tx) -> list[Notification]:
            due = sorted(
                (n for n in self.data.notifications.values() if n.state == "pending" and n.next_attempt_at <= now),
                key=lambda n: (n.next_attempt_at, n.id),
            )[:limit]
            for n in due:
                tx.update(n, next_attempt_at=now + lease, attempts=n.attempts + 1)
            return copy.deepcopy(due)

        return await self.db.write(op)

    async def notification_sent(self, notification_id: int, at: float) -> None:
        def op(tx: _Tx) -> None:
            tx.update(self.data.notifications.get(notification_id), state="sent", sent_at=at, last_error="")

        await self.db.write(op)

    async def notification_failed(self, notification_id: int, error: str, next_attempt_at: float | None) -> None:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (state failed) on None."""
        values: dict[str, Any] = {"last_error": error[:4000]}
        if next_attempt_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = next_attempt_at

        def op(tx: _Tx) -> None:
            tx.update(self.data.notifications.get(notification_id), **values)

        await self.db.write(op)

    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]:
        """Newest first; `state` ("pending", "sent", "failed") filters when given."""
        newest_first = (n for _, n in sorted(self.data.notifications.items(), reverse=True))
        return [copy.deepcopy(n) for n in newest_first if not state or n.state == state][:limit]


# ---------------------------------------------------------------- values as SQL stores them


def _json(value: T) -> T:
    """`value` as it comes back from a JSON column (a fresh copy, tuples turned to lists)."""
    return cast(T, json.loads(json.dumps(value)))


def _props(props: Iterable[PropertyValue]) -> list[PropertyValue]:
    return [PropertyValue(p.name, _json(p.value), p.source) for p in props]


def _urls(urls: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    return [(str(name), str(url)) for name, url in _json([list(u) for u in urls])]


def _copy_or_none(row: T | None) -> T | None:
    return None if row is None else copy.deepcopy(row)
