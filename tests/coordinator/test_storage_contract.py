"""Storage contract: the same tests against memory (storage/memory.py), SQLite (a temp file) and
PostgreSQL.

PostgreSQL cases use a fresh, uniquely named database per module on the server of `tests.pg`
($GANTRY_TEST_PG; skipped when it is not usable, failed instead with GANTRY_REQUIRE_PG=1).
Tests share the module's database, so each uses its own builder/worker names and compares ids
relative to what was there before. A "database" in memory is a MemoryData: two MemoryStorage
opened on one url share it, as two coordinators share a database. What only SQL has (schema and
migrations, the group-commit writer, compression on disk, two engines racing) is tested on
SQLite and PostgreSQL only (`sql_only`).
"""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coordinator.domain.builds import bookkeeping
from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.events import (
    Event,
    build_started,
    buildrequest_added,
    buildset_added,
    buildset_finished,
    change_added,
    step_finished,
    step_started,
    step_urls,
    worker_connected,
    worker_disconnected,
)
from coordinator.domain.model import (
    Build,
    BuildRequest,
    CaseResult,
    Change,
    Classified,
    LogInfo,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
    SourceStamp,
    Step,
)
from coordinator.domain.ports import Ledger
from coordinator.domain.results import Result
from coordinator.domain.status.feed import LogReader
from coordinator.domain.steps.logs import LogWatchers, StepLog
from coordinator.domain.workers.commands import HEADER, STDERR, STDOUT
from coordinator.storage import schema
from coordinator.storage.memory import MemoryData, MemoryStorage
from coordinator.storage.sql import SqlStorage, StorageError, database_url, open_storage
from coordinator.storage.writer import Tx
from tests import pg

T0 = 1_700_000_000.0
BACKENDS = ["memory", "sqlite", "postgresql"]
SQL = ["sqlite", "postgresql"]
# For what only SQL storage has: these tests run on SQLite and PostgreSQL, not on memory.
sql_only = pytest.mark.parametrize("backend", SQL, indirect=True)

Storage = SqlStorage | MemoryStorage


# ------------------------------------------------------------------------------------ backends


@dataclass
class Backend:
    kind: str
    url: str  # the module's shared database
    _fresh: Callable[[], Awaitable[str]]

    async def fresh_url(self) -> str:
        """A new, empty database (for tests that need a pristine schema)."""
        return await self._fresh()


# The in-memory databases, by url ("memory:..."): what opening that url again finds.
_memory_databases: dict[str, MemoryData] = {}


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if request.param == "memory":
        urls: list[str] = []

        async def fresh_memory() -> str:
            urls.append(f"memory:{uuid.uuid4().hex}")
            _memory_databases[urls[-1]] = MemoryData()
            return urls[-1]

        try:
            yield Backend("memory", asyncio.run(fresh_memory()), fresh_memory)
        finally:
            for url in urls:
                del _memory_databases[url]
        return

    if request.param == "sqlite":
        root = tmp_path_factory.mktemp("sqlite")

        async def fresh_sqlite() -> str:
            return database_url(f"sqlite:///{root / (uuid.uuid4().hex + '.sqlite')}", root)

        yield Backend("sqlite", database_url(None, root), fresh_sqlite)
        return

    pg.require_sync()
    names: list[str] = []

    async def fresh_pg() -> str:
        names.append(await pg.create_database("gantry_contract"))
        return database_url(pg.url_of(names[-1]), Path("."))

    try:
        yield Backend("postgresql", asyncio.run(fresh_pg()), fresh_pg)
    finally:
        for name in names:
            asyncio.run(pg.drop_database(name))


@dataclass
class Store:
    db: Storage
    published: list[Event]  # flattened, in the order the publish callback saw them

    @property
    def publish_calls(self) -> int:
        return self._calls[0]

    @property
    def sql(self) -> SqlStorage:
        """The SQL storage, for `sql_only` tests."""
        assert isinstance(self.db, SqlStorage)
        return self.db

    _calls: list[int] = field(default_factory=lambda: [0])


async def _open(url: str) -> Store:
    published: list[Event] = []
    calls = [0]

    def publish(events: list[Event]) -> None:
        calls[0] += 1
        published.extend(events)

    db: Storage
    if url.startswith("memory:"):
        db = MemoryStorage(publish, data=_memory_databases[url])
    else:
        db = await open_storage(url, publish)
    return Store(db, published, calls)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await _open(backend.url)
    try:
        yield s
    finally:
        await s.db.aclose()


# ------------------------------------------------------------------------------------ helpers


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def change(i: int = 0, branch: str = "main", **kw: object) -> Change:
    values: dict[str, object] = dict(
        author=f"alice <a@example.org> {i}",
        revision=f"{i:040x}",
        branch=branch,
        repository="https://example.org/repo.git",
        comments=f"commit {i}\n\nbody ✓",
        files=["src/a.py", f"docs/{i}.md"],
        project="gantry",
        when=T0 + i,
        properties={"ticket": i, "tags": ["x", "y"]},
    )
    values.update(kw)
    return Change(**values)  # type: ignore[arg-type]


def new_buildset(builders: list[str], priority: int = 0, change_ids: list[int] | None = None) -> NewBuildset:
    return NewBuildset(
        reason="because",
        scheduler="sched",
        builders=builders,
        sourcestamps=[SourceStamp(repository="r", branch="main", revision="abc", project="p")],
        properties=[PropertyValue("scheduler", "sched", "Scheduler"), PropertyValue("n", [1, 2], "Test")],
        change_ids=change_ids or [],
        priority=priority,
    )


# The writes, with the events the domain passes for them (as ChangeIntake, BuildsetSubmitter,
# the Dispatcher and the BuildRunner do).


async def add_changes(
    db: Storage, changes: Sequence[Change], key: str, at: float, classified: Sequence[Classified] = ()
) -> tuple[list[int], bool]:
    return await db.changes.add_changes(changes, key, at, classified, events=changes_added(at))


def changes_added(at: float) -> Callable[[list[Change]], list[Event]]:
    return lambda stored: [change_added(c, at) for c in stored]


async def add_buildset(
    db: Storage, bs: NewBuildset | None, at: float, commit: SchedulerCommit | None = None
) -> tuple[int, dict[str, int]]:
    def added(bs_id: int, requests: list[BuildRequest]) -> list[Event]:
        assert bs is not None
        return [buildset_added(bs_id, bs, at), *(buildrequest_added(r, at) for r in requests)]

    return await db.buildsets.add_buildset(bs, at, commit, events=added)


async def start_build(
    db: Storage, req: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
    step_names: Sequence[str] = (),
) -> Build:
    return await db.builds.start_build(req, worker, properties, at, step_names,
                                       events=lambda build: [build_started(build)])


async def start_step(db: Storage, build: Build, step: Step, at: float) -> None:
    await db.builds.start_step(build, step, at, [step_started(build, step, at)])


async def finish_step(
    db: Storage, build: Build, step: Step, result: Result, state_string: str, at: float, logs: Sequence[int] = ()
) -> None:
    await db.builds.finish_step(build, step, result, state_string, at, logs,
                                [step_finished(build, step, result, state_string, at)])


async def request_for(db: Storage, builder: str, priority: int = 0) -> BuildRequest:
    bs_id, reqs = await add_buildset(db, new_buildset([builder], priority), T0)
    return BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=priority, submitted_at=T0)


async def started_build(db: Storage, builder: str, coordinator: str = "c1") -> Build:
    req = await request_for(db, builder)
    assert await db.buildsets.claim_request(req.id, coordinator, T0)
    return await start_build(db, req, "w1", [PropertyValue("p", 1, "Test")], T0 + 1)


async def request_row(db: Storage, request_id: int) -> Any:
    """The stored request, with who claimed it and when (which BuildRequest does not say)."""
    if isinstance(db, MemoryStorage):
        return copy.copy(db.data.buildrequests[request_id])
    async with db.engine.connect() as conn:
        t = schema.buildrequests
        row = (await conn.execute(sa.select(t).where(t.c.id == request_id))).first()
    assert row is not None
    return row


def new_events(store: Store, since: int) -> list[Event]:
    return [e for e in store.published if e.id > since]


def assert_strictly_increasing(ids: list[int]) -> None:
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False)), ids


# ------------------------------------------------------------------------------------ migrations


async def _versions(db: SqlStorage) -> list[int]:
    async with db.engine.connect() as conn:
        return [r[0] for r in await conn.execute(sa.select(schema.schema_version.c.version))]


@sql_only
async def test_migrations_are_versioned_and_idempotent(backend: Backend) -> None:
    url = await backend.fresh_url()
    first = await _open(url)
    try:
        assert await _versions(first.sql) == [schema.LATEST]
        ids, _ = await add_changes(first.db, [change(1)], "", T0)
    finally:
        await first.db.aclose()

    # Opening again is a no-op: same single version row, data kept.
    second = await _open(url)
    try:
        assert await _versions(second.sql) == [schema.LATEST]
        kept = await second.db.changes.get_change(ids[0])
        assert kept is not None and kept.revision == change(1).revision
        async with second.sql.engine.begin() as conn:
            assert await conn.run_sync(schema.migrate) == (schema.LATEST, schema.LATEST)
        assert await _versions(second.sql) == [schema.LATEST]
    finally:
        await second.db.aclose()


@sql_only
async def test_database_from_a_newer_gantry_is_refused(backend: Backend) -> None:
    url = await backend.fresh_url()
    s = await _open(url)
    async with s.sql.engine.begin() as conn:
        await conn.execute(schema.schema_version.insert().values(version=schema.LATEST + 1))
    await s.db.aclose()
    with pytest.raises(StorageError) as info:
        await _open(url)
    text = str(info.value)
    assert str(schema.LATEST + 1) in text and "newer" in text and "upgrade" in text


@sql_only
async def test_unreachable_database_is_a_storage_error(backend: Backend, tmp_path: Path) -> None:
    if backend.kind == "sqlite":
        url = database_url(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.sqlite'}", tmp_path)
    else:
        url = database_url(pg.url_of("gantry_no_such_database_xyz"), tmp_path)
    threads_before = set(threading.enumerate())
    with pytest.raises(StorageError, match="cannot open the database"):
        await _open(url)
    # aiosqlite stops the worker thread of a failed connect without waiting for it; if this
    # loop closed first, the thread would die on "Event loop is closed" (omnilib/aiosqlite#241,
    # #387). Join it while the loop still runs.
    for t in set(threading.enumerate()) - threads_before:
        await asyncio.to_thread(t.join, 10)


# ------------------------------------------------------------------------------------ changes


async def test_add_changes_commits_and_publishes_in_order(store: Store, backend: Backend) -> None:
    db = store.db
    before = await db.events.last_event_id()
    originals = [change(i) for i in range(3)]
    ids, duplicate = await add_changes(db, originals, "", T0)
    assert not duplicate
    assert len(ids) == 3 and ids == sorted(ids)

    # Committed: visible through another connection, and from another storage instance.
    other = await _open(backend.url)
    try:
        for orig, i in zip(originals, ids, strict=True):
            got = await other.db.changes.get_change(i)
            assert got is not None
            assert (got.author, got.revision, got.branch, got.comments, got.files, got.properties, got.when) == (
                orig.author, orig.revision, orig.branch, orig.comments, orig.files, orig.properties, orig.when
            )
    finally:
        await other.db.aclose()

    events = new_events(store, before)
    assert [e.kind for e in events] == ["change.added"] * 3
    assert [e.details["change_id"] for e in events] == ids
    assert_strictly_increasing([e.id for e in events])
    # What was published is exactly what is stored.
    assert await db.events.events_after(before, 100) == events


async def _concurrent_changes(store: Store) -> list[Event]:
    """40 submissions of two changes each, all at once; the events they published."""
    db = store.db
    before = await db.events.last_event_id()
    results = await asyncio.gather(*(add_changes(db, [change(i), change(i + 100)], "", T0) for i in range(40)))
    all_ids = [i for ids, _ in results for i in ids]
    assert len(set(all_ids)) == 80
    return new_events(store, before)


async def test_concurrent_writes_publish_in_id_order(store: Store) -> None:
    events = await _concurrent_changes(store)
    assert len(events) == 80
    assert_strictly_increasing([e.id for e in events])


@sql_only
async def test_concurrent_writes_share_group_commits(store: Store) -> None:
    await _concurrent_changes(store)
    assert store.publish_calls < 40, "concurrent submissions should share group commits"


async def test_idempotency_key_returns_same_ids_and_stores_nothing(store: Store) -> None:
    db = store.db
    key = uniq("key")
    ids, duplicate = await add_changes(db, [change(1), change(2)], key, T0)
    assert not duplicate
    last_event = await db.events.last_event_id()
    newest = (await db.changes.list_changes(1))[0].id
    published = len(store.published)

    again, duplicate = await add_changes(db, [change(7, branch="other")], key, T0 + 5)
    assert duplicate and again == ids
    assert (await db.changes.list_changes(1))[0].id == newest
    assert await db.events.last_event_id() == last_event
    assert len(store.published) == published

    # Two submissions with the same key in flight at once: still stored once.
    key2 = uniq("key")
    (a, dup_a), (b, dup_b) = await asyncio.gather(
        add_changes(db, [change(3)], key2, T0), add_changes(db, [change(3)], key2, T0)
    )
    assert a == b and sorted([dup_a, dup_b]) == [False, True]


# ------------------------------------------------------------------------------------ change sources


async def add_polled_changes(
    db: Storage, name: str, changes: Sequence[Change], state: dict[str, str], at: float,
    previous: dict[str, str] | None,
) -> list[int]:
    return await db.changes.add_polled_changes(name, changes, state, at, previous, [], events=changes_added(at))


async def test_change_source_state_is_stored_with_its_changes(store: Store, backend: Backend) -> None:
    db = store.db
    name = uniq("GitPoller:repo")
    assert await db.changes.get_change_source_state(name) is None
    assert await add_polled_changes(db, name, [], {"main": "a" * 40}, T0, None) == []
    assert await db.changes.get_change_source_state(name) == {"main": "a" * 40}

    before = await db.events.last_event_id()
    ids = await add_polled_changes(
        db, name, [change(1), change(2)], {"main": "b" * 40, "dev": "c" * 40}, T0, {"main": "a" * 40}
    )
    assert len(ids) == 2 and ids == sorted(ids)
    stored = [await db.changes.get_change(i) for i in ids]
    assert [c.revision if c else None for c in stored] == [change(1).revision, change(2).revision]
    assert [e.details["change_id"] for e in new_events(store, before)] == ids
    other = await _open(backend.url)  # committed: another instance sees it
    try:
        assert await other.db.changes.get_change_source_state(name) == {"main": "b" * 40, "dev": "c" * 40}
    finally:
        await other.db.aclose()


async def _a_failing_poll_stores_nothing(store: Store, broken: Change, error: type[Exception]) -> None:
    """The second change of a poll is refused: neither the first change nor the state is stored."""
    db = store.db
    name = uniq("GitPoller:repo")
    await add_polled_changes(db, name, [], {"main": "a" * 40}, T0, None)
    before = await db.events.last_event_id()
    newest = [c.id for c in await db.changes.list_changes(1)]
    with pytest.raises(error):
        await add_polled_changes(
            db, name, [change(4, author=uniq("first")), broken], {"main": "d" * 40}, T0, {"main": "a" * 40}
        )
    assert await db.changes.get_change_source_state(name) == {"main": "a" * 40}
    assert await db.events.last_event_id() == before
    assert new_events(store, before) == []
    assert [c.id for c in await db.changes.list_changes(1)] == newest  # the first change neither


async def test_change_source_state_and_changes_are_one_transaction(store: Store) -> None:
    # A property value JSON cannot hold: every backend refuses the second change.
    await _a_failing_poll_stores_nothing(store, change(3, properties={"tags": {"x"}}), TypeError)


@sql_only
async def test_change_source_state_and_changes_are_one_database_transaction(store: Store) -> None:
    # NOT NULL: the database itself refuses the second change, mid-transaction.
    await _a_failing_poll_stores_nothing(store, change(3, author=None), sa.exc.IntegrityError)


async def test_a_stale_change_source_state_stores_nothing(store: Store) -> None:
    """Two coordinators on one database poll the same repository: only the first stores."""
    db = store.db
    name = uniq("GitPoller:repo")
    await add_polled_changes(db, name, [], {"main": "a" * 40}, T0, None)
    with pytest.raises(FailedPrecondition):
        await add_polled_changes(db, name, [], {"main": "x" * 40}, T0, None)
    await add_polled_changes(db, name, [change(5)], {"main": "b" * 40}, T0, {"main": "a" * 40})
    before = await db.events.last_event_id()
    with pytest.raises(FailedPrecondition):
        await add_polled_changes(db, name, [change(5)], {"main": "b" * 40}, T0, {"main": "a" * 40})
    assert await db.events.last_event_id() == before
    assert await db.changes.get_change_source_state(name) == {"main": "b" * 40}


# ------------------------------------------------------------------------------------ group commit


@sql_only
@pytest.mark.parametrize("failure", ["python-exception", "database-error"])
async def test_failing_op_in_a_batch_does_not_fail_its_neighbours(store: Store, failure: str) -> None:
    db = store.sql
    marker = uniq("batch")
    taken_key = uniq("taken")
    await add_changes(db, [change(0)], taken_key, T0)
    before = await db.events.last_event_id()
    first_tx: dict[int, Tx] = {}  # op index -> the Tx it first ran in
    bad = 3

    def make(i: int) -> Callable[[Tx], int]:
        def op(tx: Tx) -> int:
            first_tx.setdefault(i, tx)
            values = {**_change_row(f"{marker}-{i}"), "when_ts": T0}
            cid = int(tx.conn.execute(schema.changes.insert().values(values)).inserted_primary_key[0])  # type: ignore[index]
            tx.emit(Event(kind="change.added", at=T0, details={"change_id": cid, "op": i}))
            if i == bad:
                if failure == "python-exception":
                    raise ValueError("boom")
                tx.conn.execute(  # duplicate primary key: the database rejects it
                    schema.idempotency_keys.insert().values(key=taken_key, change_ids_json="[]", created_at=T0)
                )
            return i

        return op

    results = await asyncio.gather(*(db.writer.submit(make(i)) for i in range(6)), return_exceptions=True)

    assert len({id(first_tx[i]) for i in range(bad + 1)}) == 1, "ops were not committed as one batch"
    for i, r in enumerate(results):
        if i == bad:
            assert isinstance(r, ValueError if failure == "python-exception" else sa.exc.IntegrityError)
        else:
            assert r == i
    async with db.engine.connect() as conn:
        stored = sorted(
            r[0] for r in await conn.execute(
                sa.select(schema.changes.c.author).where(schema.changes.c.author.like(f"{marker}-%"))
            )
        )
    assert stored == [f"{marker}-{i}" for i in range(6) if i != bad]
    events = new_events(store, before)
    assert sorted(e.details["op"] for e in events) == [i for i in range(6) if i != bad]
    assert_strictly_increasing([e.id for e in events])
    assert await db.events.events_after(before, 100) == events


def _change_row(author: str) -> dict[str, object]:
    return {
        "author": author, "committer": "", "comments": "", "files_json": "[]", "revision": "r",
        "branch": "b", "repository": "repo", "project": "", "codebase": "", "category": "",
        "properties_json": "{}", "revlink": "",
    }


# ------------------------------------------------------------------------------------ buildsets


async def test_add_buildset_creates_requests_and_events(store: Store) -> None:
    db = store.db
    b1, b2 = uniq("b"), uniq("b")
    ids, _ = await add_changes(db, [change(1)], "", T0)
    before = await db.events.last_event_id()
    bs = new_buildset([b1, b2], priority=7, change_ids=ids)
    bs_id, reqs = await add_buildset(db, bs, T0 + 1)
    assert set(reqs) == {b1, b2}

    got = await db.buildsets.get_buildset(bs_id)
    assert got is not None
    assert (got.reason, got.scheduler, got.submitted_at, got.change_ids) == ("because", "sched", T0 + 1, ids)
    assert got.sourcestamps == bs.sourcestamps and got.properties == bs.properties
    assert not got.complete and got.result is None

    pending = {r.id: r for r in await db.buildsets.unclaimed_requests()}
    for builder, req_id in reqs.items():
        r = pending[req_id]
        assert (r.builder, r.buildset_id, r.priority, r.submitted_at) == (builder, bs_id, 7, T0 + 1)

    events = new_events(store, before)
    assert [e.kind for e in events] == ["buildset.added", "buildrequest.added", "buildrequest.added"]
    assert all(e.buildset_id == bs_id for e in events)
    assert {e.builder: e.details["request_id"] for e in events[1:]} == reqs
    assert sorted(events[0].details["builders"]) == sorted([b1, b2])
    assert await db.buildsets.get_buildset(10**9) is None


# ------------------------------------------------------------------------------------ claims


async def test_claim_is_atomic_within_one_coordinator(store: Store) -> None:
    db = store.db
    req = await request_for(db, uniq("b"))
    wins = await asyncio.gather(*(db.buildsets.claim_request(req.id, f"c{i}", T0) for i in range(25)))
    assert wins.count(True) == 1
    row = await request_row(db, req.id)
    assert row.claimed_by == f"c{wins.index(True)}" and row.claimed_at == T0
    assert req.id not in {r.id for r in await db.buildsets.unclaimed_requests()}
    assert not await db.buildsets.claim_request(req.id, "late", T0)


@sql_only
async def test_claim_is_atomic_across_two_coordinators(store: Store, backend: Backend) -> None:
    """Two storage instances (two engines, as two coordinators) race for the same requests."""
    builder = uniq("b")
    reqs = [await request_for(store.db, builder) for _ in range(15)]
    other = await _open(backend.url)
    try:
        tries = [
            (db, req.id, name)
            for req in reqs
            for db, name in ((store.db, "c1"), (other.db, "c2"))
            for _ in range(3)
        ]
        random.Random(4).shuffle(tries)
        wins = await asyncio.gather(*(db.buildsets.claim_request(rid, name, T0) for db, rid, name in tries))
    finally:
        await other.db.aclose()
    for req in reqs:
        won = [tries[i][2] for i, w in enumerate(wins) if w and tries[i][1] == req.id]
        assert len(won) == 1, f"request {req.id} claimed {len(won)} times"
        assert (await request_row(store.db, req.id)).claimed_by == won[0]


async def test_a_completed_request_cannot_be_claimed(store: Store) -> None:
    build = await started_build(store.db, uniq("b"))
    await bookkeeping.finish_build(store.db.book, build, Result.SUCCESS, "ok", T0 + 2)
    assert not await store.db.buildsets.claim_request(build.build_request_id, "c9", T0 + 3)


# ------------------------------------------------------------------------------------ builds


async def test_start_build_numbers_builds_per_builder(store: Store) -> None:
    db = store.db
    a, b = uniq("a"), uniq("b")
    before = await db.events.last_event_id()
    numbers_a = [(await started_build(db, a)).number for _ in range(3)]
    first_b = await started_build(db, b)
    assert numbers_a == [1, 2, 3] and first_b.number == 1

    got = await db.builds.get_build(a, 2)
    assert got is not None
    assert (got.builder, got.number, got.worker, got.started_at, got.complete) == (a, 2, "w1", T0 + 1, False)
    assert {p.name: p.value for p in got.properties} == {"p": 1, "buildnumber": 2}
    assert got.reason == "because" and got.sourcestamps[0].revision == "abc"
    assert await db.builds.get_build(a, 4) is None
    assert [x.number for x in await db.builds.list_builds(a, 10)] == [3, 2, 1]

    started = [e for e in new_events(store, before) if e.kind == "build.started"]
    assert [(e.builder, e.build_number) for e in started] == [(a, 1), (a, 2), (a, 3), (b, 1)]


async def test_list_builds_pages_filters_by_result_and_fills_steps_in_one_read(store: Store) -> None:
    """What the web UI's history and waterfall read: pages by id, a result filter that leaves out
    running builds, and the steps of a whole page (without their logs)."""
    db = store.db
    builder = uniq("b")
    builds = []
    for result in (Result.SUCCESS, Result.FAILURE, None):
        req = await request_for(db, builder)
        assert await db.buildsets.claim_request(req.id, "c1", T0)
        build = await start_build(db, req, "w1", [], T0 + 1, ["compile", "test"])
        if result is not None:
            await bookkeeping.finish_build(db.book, build, result, "done", T0 + 2)
        builds.append(build)
    listed = await db.builds.list_builds(builder, 10)
    assert [b.number for b in listed] == [3, 2, 1] and all(b.steps == [] for b in listed)
    page = await db.builds.list_builds(builder, 10, before_id=builds[2].id)
    assert [b.number for b in page] == [2, 1]
    failed = await db.builds.list_builds(builder, 10, results=[Result.FAILURE, Result.EXCEPTION])
    assert [b.number for b in failed] == [2]
    assert [b.number for b in await db.builds.list_builds(builder, 10, results=[Result.SUCCESS])] == [1]
    with_steps = await db.builds.list_builds(builder, 2, with_steps=True)
    assert [[s.name for s in b.steps] for b in with_steps] == [["compile", "test"], ["compile", "test"]]
    assert all(s.logs == [] for b in with_steps for s in b.steps)


async def test_list_builds_filters_by_the_branch_of_any_source_stamp(store: Store) -> None:
    """The web UI's builder history `?branch=`: a build whose buildset has a stamp (any codebase)
    on exactly that branch; LIKE's wildcards and JSON escapes in a name are taken literally."""
    db = store.db
    builder = uniq("b")
    branches = [["main"], ["main2"], ["release/1.x", "main"], ["feat_%"], ['we"ird\\x']]
    for stamps in branches:
        nb = new_buildset([builder])
        nb.sourcestamps = [SourceStamp(repository="r", branch=b, codebase=f"c{i}") for i, b in enumerate(stamps)]
        bs_id, reqs = await add_buildset(db, nb, T0)
        req = BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=0, submitted_at=T0)
        assert await db.buildsets.claim_request(req.id, "c1", T0)
        await start_build(db, req, "w1", [], T0 + 1)

    async def numbers(branch: str, **kw: Any) -> list[int]:
        return [b.number for b in await db.builds.list_builds(builder, 10, branch=branch, **kw)]

    assert await numbers("main") == [3, 1]
    assert await numbers("release/1.x") == [3] and await numbers("mai") == []
    assert await numbers("feat_%") == [4] and await numbers("feat__") == [] and await numbers("%") == []
    assert await numbers('we"ird\\x') == [5]
    third = next(b for b in await db.builds.list_builds(builder, 10) if b.number == 3)
    assert await numbers("main", before_id=third.id) == [1]
    assert await numbers("main", results=[Result.SUCCESS]) == []  # both filters: none finished
    assert len(await numbers("")) == 5


async def test_start_build_stores_its_steps_and_finish_stores_properties_and_closes_logs(store: Store) -> None:
    """The build path's folded writes: steps with the build, logs closed with their step, final
    properties with the build's end."""
    db = store.db
    builder = uniq("b")
    req = await request_for(db, builder)
    assert await db.buildsets.claim_request(req.id, "c1", T0)
    build = await start_build(db, req, "w1", [], T0 + 1, ["compile", "test"])
    assert [(s.number, s.name) for s in build.steps] == [(0, "compile"), (1, "test")]
    step = build.steps[0]
    step.started_at = T0 + 2
    await start_step(db, build, step, T0 + 2)
    info = await db.logs.add_log(step, "stdio", "s")
    await finish_step(db, build, step, Result.SUCCESS, "compiled", T0 + 3, logs=[info.id])
    await finish_step(db, build, build.steps[1], Result.SKIPPED, "skipped", T0 + 3)
    await bookkeeping.finish_build(db.book, build, Result.SUCCESS, "build successful", T0 + 4,
                                   properties=[PropertyValue("got_revision", "abc", "Step")])
    stored = await db.builds.get_build(builder, build.number)
    assert stored is not None
    assert [(s.id, s.name, s.state_string) for s in stored.steps] == [
        (build.steps[0].id, "compile", "compiled"), (build.steps[1].id, "test", "skipped")]
    assert [(lg.name, lg.complete) for lg in stored.steps[0].logs] == [("stdio", True)]
    assert {p.name: p.value for p in stored.properties} == {"got_revision": "abc"}
    assert stored.result == Result.SUCCESS and stored.state_string == "build successful"


async def test_finish_build_completes_request_and_buildset_with_worst_result(store: Store) -> None:
    db = store.db
    b1, b2 = uniq("b"), uniq("b")
    bs_id, reqs = await add_buildset(db, new_buildset([b1, b2]), T0)
    builds = []
    for builder in (b1, b2):
        req = BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=0, submitted_at=T0)
        assert await db.buildsets.claim_request(req.id, "c1", T0)
        builds.append(await start_build(db, req, "w1", [], T0 + 1))
    before = await db.events.last_event_id()

    assert not await bookkeeping.finish_build(db.book, builds[0], Result.WARNINGS, "warnings compile", T0 + 5)
    bs = await db.buildsets.get_buildset(bs_id)
    assert bs is not None and not bs.complete
    row = await request_row(db, reqs[b1])
    assert row.complete and row.result == int(Result.WARNINGS) and row.completed_at == T0 + 5

    await bookkeeping.finish_build(db.book, builds[1], Result.FAILURE, "failed test", T0 + 6)
    bs = await db.buildsets.get_buildset(bs_id)
    assert bs is not None and bs.complete and bs.result == Result.FAILURE

    done = await db.builds.get_build(b2, 1)
    assert done is not None
    assert (done.result, done.state_string, done.finished_at) == (Result.FAILURE, "failed test", T0 + 6)
    events = new_events(store, before)
    assert [(e.kind, e.result) for e in events] == [
        ("build.finished", Result.WARNINGS),
        ("build.finished", Result.FAILURE),
        ("buildset.finished", Result.FAILURE),
    ]
    assert events[0].details["duration"] == 4.0


async def test_finish_build_with_retry_requeues_the_request(store: Store) -> None:
    db = store.db
    builder = uniq("b")
    build = await started_build(db, builder)
    before = await db.events.last_event_id()
    assert await bookkeeping.finish_build(db.book, build, Result.RETRY, "retry: worker lost", T0 + 2)

    row = await request_row(db, build.build_request_id)
    assert row.claimed_by is None and row.claimed_at is None and not row.complete
    assert build.build_request_id in {r.id for r in await db.buildsets.unclaimed_requests()}
    bs = await db.buildsets.get_buildset(build.buildset_id)
    assert bs is not None and not bs.complete
    assert [e.kind for e in new_events(store, before)] == ["build.finished", "buildrequest.retried"]

    req = BuildRequest(id=build.build_request_id, buildset_id=build.buildset_id, builder=builder,
                       priority=0, submitted_at=T0)
    assert await db.buildsets.claim_request(req.id, "c2", T0 + 3)
    second = await start_build(db, req, "w2", [], T0 + 3)
    assert second.number == 2
    assert not await bookkeeping.finish_build(db.book, second, Result.SUCCESS, "build successful", T0 + 4)
    bs = await db.buildsets.get_buildset(build.buildset_id)
    assert bs is not None and bs.complete and bs.result == Result.SUCCESS


async def test_release_orphaned_claims(store: Store) -> None:
    db = store.db
    builder = uniq("b")
    build = await started_build(db, builder, "dead")
    steps = await db.builds.add_steps(build, ["checkout", "compile"])
    await start_step(db, build, steps[0], T0 + 2)
    claimed_only = await request_for(db, builder)
    assert await db.buildsets.claim_request(claimed_only.id, "dead", T0)
    others = await request_for(db, builder)
    assert await db.buildsets.claim_request(others.id, "alive", T0)
    worker = uniq("w")
    await db.workers.worker_connected(worker, {}, T0, [worker_connected(worker, {}, T0)])
    before = await db.events.last_event_id()

    # What a coordinator does at start-up (app.py).
    await db.workers.reset_connections()
    assert await bookkeeping.release_orphans(db.book, "dead", T0 + 10) == 2

    got = await db.builds.get_build(builder, build.number)
    assert got is not None
    assert got.result == Result.RETRY and got.finished_at == T0 + 10
    assert got.steps[0].result == Result.RETRY and got.steps[0].complete
    assert got.steps[1].result is None and not got.steps[1].complete  # never started
    pending = {r.id for r in await db.buildsets.unclaimed_requests()}
    assert {build.build_request_id, claimed_only.id} <= pending
    assert others.id not in pending  # another coordinator's claim is left alone
    assert (await request_row(db, others.id)).claimed_by == "alive"
    assert not any(w.connected for w in await db.workers.list_workers())
    events = new_events(store, before)
    assert [(e.kind, e.builder, e.build_number, e.result) for e in events] == [
        ("build.finished", builder, build.number, Result.RETRY)
    ]
    assert await bookkeeping.release_orphans(db.book, "dead", T0 + 11) == 0


async def test_release_orphans_keeps_the_builds_that_continue(store: Store) -> None:
    db = store.db
    builder = uniq("b")
    goes_on = await started_build(db, builder, "dead")
    retried = await started_build(db, builder, "dead")
    assert {b.id for b in await bookkeeping.orphans(db.book, "dead")} >= {goes_on.id, retried.id}
    assert await bookkeeping.release_orphans(db.book, "dead", T0 + 10, keep=[goes_on.build_request_id]) >= 1
    kept = await db.builds.get_build(builder, goes_on.number)
    assert kept is not None and kept.finished_at is None
    assert (await request_row(db, goes_on.build_request_id)).claimed_by == "dead"
    gone = await db.builds.get_build(builder, retried.number)
    assert gone is not None and gone.result == Result.RETRY
    assert retried.build_request_id in {r.id for r in await db.buildsets.unclaimed_requests()}


async def test_bookkeeping_is_one_transaction(store: Store) -> None:
    """What `decide` did is stored with its events, or, when it raises, none of it."""
    db = store.db
    req = await request_for(db, uniq("b"))
    before = await db.events.last_event_id()

    def decide(ledger: Ledger) -> None:
        assert ledger.complete_request(req.id, Result.CANCELLED, T0 + 1, unclaimed_only=True)
        ledger.complete_buildset(req.buildset_id, Result.CANCELLED, T0 + 1)
        ledger.emit(buildset_finished(req.buildset_id, Result.CANCELLED, T0 + 1))
        raise RuntimeError("changed its mind")

    with pytest.raises(RuntimeError, match="changed its mind"):
        await db.book.record(decide)
    assert req.id in {r.id for r in await db.buildsets.unclaimed_requests()}
    bs = await db.buildsets.get_buildset(req.buildset_id)
    assert bs is not None and not bs.complete
    assert await db.events.last_event_id() == before and new_events(store, before) == []


async def test_build_history_for_notifiers(store: Store) -> None:
    db = store.db
    builder = uniq("b")
    results = [Result.FAILURE, Result.SUCCESS, Result.RETRY, Result.CANCELLED]
    for result in results:  # builds 1, 2, 3, 4
        await bookkeeping.finish_build(db.book, await started_build(db, builder), result, "done", T0 + 2)
    running = await started_build(db, builder)  # 5
    # Not RETRY, not CANCELLED (says nothing about the tree), not running.
    assert await db.builds.previous_build_result(builder, 6) == Result.SUCCESS
    assert await db.builds.previous_build_result(builder, 2) == Result.FAILURE
    assert await db.builds.previous_build_result(builder, 1) is None

    bs_id, reqs = await add_buildset(db, new_buildset([builder, f"{builder}-x"]), T0)
    for name, req_id in reqs.items():
        for _ in range(2 if name == builder else 1):  # the first builder's request is retried once
            req = BuildRequest(id=req_id, buildset_id=bs_id, builder=name, priority=0, submitted_at=T0)
            assert await db.buildsets.claim_request(req_id, "c1", T0)
            build = await start_build(db, req, "w1", [], T0 + 1)
            await bookkeeping.finish_build(db.book, build, Result.RETRY if name == builder else Result.SUCCESS,
                                           "done", T0 + 2)
    assert await db.builds.builds_of_buildset(bs_id) == [(builder, 7), (f"{builder}-x", 1)]
    assert await db.builds.builds_of_buildset(running.buildset_id) == [(builder, 5)]
    assert await db.builds.builds_of_buildset(10**9) == []


async def test_steps_lifecycle(store: Store) -> None:
    db = store.db
    build = await started_build(db, uniq("b"))
    steps = await db.builds.add_steps(build, ["a", "b"])
    assert [(s.number, s.name) for s in steps] == [(0, "a"), (1, "b")]
    before = await db.events.last_event_id()
    await start_step(db, build, steps[0], T0 + 2)
    steps[0].started_at = T0 + 2
    steps[0].urls = [("child #1", "builders/child/builds/1")]
    # Visible while the step runs, and published.
    await db.builds.set_step_urls(steps[0], [step_urls(build, steps[0], T0 + 3)])
    running = await db.builds.get_build(build.builder, build.number)
    assert running is not None and running.steps[0].urls == [("child #1", "builders/child/builds/1")]
    steps[0].urls = [("report", "https://example.org/r")]
    await finish_step(db, build, steps[0], Result.WARNINGS, "a (warnings)", T0 + 4)
    await finish_step(db, build, steps[1], Result.SKIPPED, "skipped", T0 + 4)
    events = new_events(store, before)
    # The build's final properties are stored with its end.
    await bookkeeping.finish_build(db.book, build, Result.WARNINGS, "warnings", T0 + 5,
                                   properties=[PropertyValue("got_revision", "abc", "Step")])
    got = await db.builds.get_build(build.builder, build.number)
    assert got is not None
    a, b = got.steps
    assert (a.result, a.state_string, a.started_at, a.finished_at, a.urls) == (
        Result.WARNINGS, "a (warnings)", T0 + 2, T0 + 4, [("report", "https://example.org/r")]
    )
    assert (b.result, b.started_at, b.complete) == (Result.SKIPPED, None, True)
    assert got.properties == [PropertyValue("got_revision", "abc", "Step")]
    assert [(e.kind, e.step_number, e.step_name) for e in events] == [
        ("step.started", 0, "a"), ("step.urls", 0, "a"), ("step.finished", 0, "a"), ("step.finished", 1, "b")
    ]
    assert events[1].details == {"urls": [{"name": "child #1", "url": "builders/child/builds/1"}]}
    assert (events[1].builder, events[1].build_number, events[1].at) == (build.builder, build.number, T0 + 3)
    assert events[2].details["duration"] == 2.0


async def test_finish_step_stores_the_properties_so_far(store: Store) -> None:
    # What a build resumed after a coordinator restart continues from.
    db = store.db
    build = await started_build(db, uniq("b"))
    (step,) = await db.builds.add_steps(build, ["a"])
    await start_step(db, build, step, T0 + 2)
    props = [PropertyValue("p", 1, "Test"), PropertyValue("got_revision", "abc", "Step")]
    await db.builds.finish_step(build, step, Result.SUCCESS, "a", T0 + 3, [], [], properties=props)
    got = await db.builds.get_build(build.builder, build.number)
    assert got is not None and got.properties == props
    (running,) = [b for b in await db.book.record(lambda ledger: ledger.running_builds("c1")) if b.id == build.id]
    assert running.properties == props


async def test_stored_rows_are_not_the_callers_objects(store: Store) -> None:
    """What a write was given, and what a read returned, can change without changing what is
    stored (as with SQL, whatever the backend)."""
    db = store.db
    build = await started_build(db, uniq("b"))
    (step,) = await db.builds.add_steps(build, ["one"])
    build.state_string, build.properties[0] = "mutated", PropertyValue("p", 2, "Test")
    step.name, step.urls = "renamed", [("x", "y")]
    got = await db.builds.get_build(build.builder, build.number)
    assert got is not None
    assert (got.state_string, got.properties[0].value, got.steps[0].name, got.steps[0].urls) == (
        "starting", 1, "one", [])
    got.steps[0].logs.append(LogInfo(0, 0, "fake", "s"))
    got.properties.clear()
    again = await db.builds.get_build(build.builder, build.number)
    assert again is not None and again.steps[0].logs == [] and len(again.properties) == 2


# ------------------------------------------------------------------------------------ logs


async def _write_log(db: Storage) -> tuple[Build, LogInfo, list[tuple[int, bytes]]]:
    """A build with a complete stdio log of 120 pieces of every kind, written as a step does."""
    build = await started_build(db, uniq("b"))
    (step,) = await db.builds.add_steps(build, ["compile"])
    info = await db.logs.add_log(step, "stdio", "s")
    writer = StepLog(info.id, "stdio", db.logs, LogWatchers())
    rnd = random.Random(11)
    pieces: list[tuple[int, bytes]] = []
    for i in range(120):
        channel = (STDOUT, STDERR, HEADER)[rnd.randrange(3)]
        kind = i % 4
        if kind == 0:  # big, compressible
            data = (f"line {i}: compiling module_{i}.c ... ok\n" * 60).encode()
        elif kind == 1:  # big, incompressible binary
            data = rnd.randbytes(rnd.randrange(600, 3000))
        elif kind == 2:  # small text
            data = f"{i} é\n".encode()
        else:  # small binary, including NUL and invalid UTF-8
            data = bytes([0, 255, 254, i % 256]) * rnd.randrange(1, 20)
        pieces.append((channel, data))
    await asyncio.gather(*(writer.write(ch, data) for ch, data in pieces))
    await db.logs.finish_log(info.id)
    return build, info, pieces


async def test_log_chunks_read_back_byte_exact_by_range(store: Store) -> None:
    db = store.db
    build, info, pieces = await _write_log(db)
    everything = b"".join(d for _, d in pieces)
    per_channel = {ch: b"".join(d for c, d in pieces if c == ch) for ch in (STDOUT, STDERR, HEADER)}
    stored = await db.logs.get_log_info(info.id)
    assert stored is not None and stored.complete and stored.size == len(everything)
    found = await db.logs.get_log(build.builder, build.number, "compile", "stdio")
    assert found is not None and found.id == info.id
    assert (await db.logs.get_log(build.builder, build.number, "0", "stdio")) == found
    assert await db.logs.get_log(build.builder, build.number, "compile", "nope") is None
    for odd in ("\u00b9", "\u0663", "9" * 30):  # names that look like digits, a number past any step's
        assert await db.logs.get_log(build.builder, build.number, odd, "stdio") is None

    rnd = random.Random(12)
    reader = LogReader(db.logs, LogWatchers(), db.builds)
    cases = [(everything, 0)] + [(per_channel[ch], ch) for ch in per_channel]
    for expected, channel in cases:
        size = len(expected)
        ranges = [(0, size), (0, 1), (size - 1, 10), (size, 10), (size + 100, 5), (0, 10**9)]
        ranges += [(rnd.randrange(size), rnd.randrange(1, 5000)) for _ in range(40)]
        for offset, limit in ranges:
            want = expected[offset : offset + limit]
            assert _slice(await db.logs.read_log(info.id, offset, limit, channel), offset, limit, channel) == want, (
                channel, offset, limit,
            )
            part = await reader.read(info.id, offset, limit, channel)
            assert part.data == want, (channel, offset, limit)
            assert part.eof == (offset + limit > size)
        # Reading in consecutive windows reassembles the whole stream.
        window, got, offset = 777, b"", 0
        while True:
            part = await reader.read(info.id, offset, window, channel)
            got += part.data
            offset += len(part.data)
            if part.eof:
                break
        assert got == expected
    assert await db.logs.read_log(info.id, len(everything), 100, 0) == []


async def test_log_times_are_stored_with_their_chunks_and_read_back_per_range(store: Store) -> None:
    """Each chunk keeps when its bytes were produced; a range read says the time of each byte
    from where the range starts (also mid-chunk), in the log's or the channel's offsets."""
    db = store.db
    build = await started_build(db, uniq("b"))
    (step,) = await db.builds.add_steps(build, ["compile"])
    info = await db.logs.add_log(step, "stdio", "s")
    writer = StepLog(info.id, "stdio", db.logs, LogWatchers(), now=lambda: 1_700_000_009.0)
    await writer.write(HEADER, b"cmd\n")  # no marks given: stamped with now()
    await writer.write(STDOUT, b"one\ntwo\n", (0, 1_700_000_001_000, 4, 1_700_000_002_000))
    await writer.write(STDERR, b"oops\n", (0, 1_700_000_003_000))
    await writer.write(STDOUT, b"three\n", (0, 1_700_000_003_000))
    chunks = await db.logs.read_log(info.id, 0, 100, 0)
    assert [c.marks for c in chunks] == [
        (0, 1_700_000_009_000), (0, 1_700_000_001_000, 4, 1_700_000_002_000),
        (0, 1_700_000_003_000), (0, 1_700_000_003_000)]
    reader = LogReader(db.logs, LogWatchers(), db.builds)
    part = await reader.read(info.id, 0, 100, 0)
    # One mark per change of time: "three" has the time of "oops" before it.
    assert part.times == [(0, 1_700_000_009_000), (4, 1_700_000_001_000), (8, 1_700_000_002_000),
                          (12, 1_700_000_003_000)]
    assert (await reader.read(info.id, 9, 3, 0)).times == [(9, 1_700_000_002_000)]  # mid-chunk
    assert (await reader.read(info.id, 5, 2, 0)).times == [(5, 1_700_000_001_000)]  # ends before a mark
    assert (await reader.read(info.id, 0, 100, STDOUT)).times == [
        (0, 1_700_000_001_000), (4, 1_700_000_002_000), (8, 1_700_000_003_000)]
    assert (await reader.read(info.id, 100, 10, 0)).times == []
    # A log written without times (as before Gantry kept them) reads without any.
    plain = await db.logs.add_log(step, "plain", "s")
    await StepLog(plain.id, "plain", db.logs, LogWatchers()).write(STDOUT, b"old\n")
    assert [c.marks for c in await db.logs.read_log(plain.id, 0, 10, 0)] == [()]
    assert (await reader.read(plain.id, 0, 10, 0)).times == []


@sql_only
async def test_log_chunks_of_a_database_from_before_times_read_without_them(backend: Backend) -> None:
    """Migration 12 adds the times to a database that predates them; its chunks stay readable."""
    url = await backend.fresh_url()
    s = await _open(url)
    build = await started_build(s.db, uniq("b"))
    (step,) = await s.db.builds.add_steps(build, ["compile"])
    info = await s.db.logs.add_log(step, "stdio", "s")
    async with s.sql.engine.begin() as conn:  # back to version 10's table and rows
        await conn.execute(sa.text("ALTER TABLE logchunks DROP COLUMN marks"))
        await conn.execute(sa.text(
            "INSERT INTO logchunks (log_id, seq, channel, \"offset\", channel_offset, length, compressed, data) "
            "VALUES (:log_id, 1, 1, 0, 0, 4, 0, :data)"), {"log_id": info.id, "data": b"old\n"})
        await conn.execute(schema.schema_version.update().values(version=10))
    await s.db.aclose()
    again = await _open(url)
    try:
        assert await _versions(again.sql) == [schema.LATEST]
        reader = LogReader(again.db.logs, LogWatchers(), again.db.builds)
        part = await reader.read(info.id, 0, 10, 0)
        assert (part.data, part.times) == (b"old\n", [])
        # Written on after the upgrade, the log has times from there on.
        writer = StepLog(info.id, "stdio", again.db.logs, LogWatchers(), now=lambda: 2.0)
        writer.resume_after(await again.db.logs.read_log(info.id, 0, 10, 0))
        writer.rest()  # what was stored is passed over: the write below is new
        await writer.write(STDOUT, b"new\n")
        assert (await reader.read(info.id, 0, 10, 0)).times == [(4, 2_000)]
    finally:
        await again.db.aclose()


@sql_only
async def test_log_chunks_are_compressed_where_it_pays(store: Store) -> None:
    db = store.sql
    _, info, pieces = await _write_log(db)
    async with db.engine.connect() as conn:
        flags = {
            r.seq: (r.compressed, r.length, len(r.data))
            for r in await conn.execute(sa.select(schema.logchunks).where(schema.logchunks.c.log_id == info.id))
        }
    for seq, (_, data) in enumerate(pieces, start=1):
        compressed, length, stored_len = flags[seq]
        assert length == len(data)
        if len(data) >= 512 and len(zlib.compress(data, 1)) < len(data):
            assert compressed == 1 and stored_len < len(data)
        else:
            assert compressed == 0 and stored_len == len(data)


def _slice(chunks: list, offset: int, limit: int, channel: int) -> bytes:  # type: ignore[type-arg]
    out = b""
    for c in chunks:
        if channel:
            assert c.channel == channel
        start = c.channel_offset if channel else c.offset
        out += c.data[max(0, offset - start) : max(0, offset + limit - start)]
    return out


# ------------------------------------------------------------------------------------ events, workers


async def test_events_after_pages_in_id_order(store: Store) -> None:
    db = store.db
    start = await db.events.last_event_id()
    for i in range(23):
        await add_changes(db, [change(i)], "", T0)
    pages: list[list[Event]] = []
    since = start
    while True:
        page = await db.events.events_after(since, 5)
        pages.append(page)
        if len(page) < 5:
            break
        since = page[-1].id
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [e for p in pages for e in p]
    assert flat == new_events(store, start)
    assert_strictly_increasing([e.id for e in flat])
    assert await db.events.last_event_id() == flat[-1].id
    assert await db.events.events_after(flat[-1].id, 5) == []
    assert flat[0].kind == "change.added" and flat[0].at == T0


async def test_list_workers_after_connect_and_disconnect(store: Store) -> None:
    db = store.db
    name = uniq("w")
    before = await db.events.last_event_id()
    info = {"os": "linux", "arch": "x86_64"}
    await db.workers.worker_connected(name, info, T0, [worker_connected(name, info, T0)])
    rec = {w.name: w for w in await db.workers.list_workers()}[name]
    assert (rec.connected, rec.since, rec.info) == (True, T0, {"os": "linux", "arch": "x86_64"})

    await db.workers.worker_disconnected(name, T0 + 5, [worker_disconnected(name, "stream closed", T0 + 5)])
    rec = {w.name: w for w in await db.workers.list_workers()}[name]
    assert (rec.connected, rec.since) == (False, T0 + 5)

    info = {"os": "darwin"}
    await db.workers.worker_connected(name, info, T0 + 9, [worker_connected(name, info, T0 + 9)])
    records = [w for w in await db.workers.list_workers() if w.name == name]
    assert len(records) == 1 and records[0].connected and records[0].info == {"os": "darwin"}

    events = new_events(store, before)
    assert [(e.kind, e.worker) for e in events] == [
        ("worker.connected", name), ("worker.disconnected", name), ("worker.connected", name)
    ]
    assert events[1].details == {"reason": "stream closed"}


# ------------------------------------------------------------------------------------ history for ETAs


async def test_recent_step_durations_reads_the_last_successful_builds(store: Store) -> None:
    db = store.db
    builder = uniq("eta")
    results = [Result.SUCCESS, Result.FAILURE, Result.SUCCESS, Result.SUCCESS]
    for i, result in enumerate(results):
        build = await started_build(db, builder)  # started at T0 + 1
        steps = await db.builds.add_steps(build, ["compile", "test", "skipped"])
        for step, (start, end) in zip(steps[:2], [(T0 + 1, T0 + 3 + i), (T0 + 3 + i, T0 + 10 + i)], strict=True):
            await start_step(db, build, step, start)
            step.started_at = start
            await finish_step(db, build, step, Result.SUCCESS, "done", end)
        await finish_step(db, build, steps[2], Result.SKIPPED, "skipped", T0 + 10 + i)
        await bookkeeping.finish_build(db.book, build, result, "done", T0 + 11 + i)
    running = await started_build(db, builder)
    await db.builds.add_steps(running, ["compile"])

    samples = await db.builds.recent_step_durations(builder, 2)
    # Builds 4 and 3 (build 2 failed, build 5 runs); the skipped step never ran.
    assert [(s.build_number, s.build_duration, s.step_name, s.step_duration) for s in samples] == [
        (4, 13.0, "compile", 5.0), (4, 13.0, "test", 7.0),
        (3, 12.0, "compile", 4.0), (3, 12.0, "test", 7.0),
    ]
    assert {s.build_number for s in await db.builds.recent_step_durations(builder, 10)} == {1, 3, 4}
    assert await db.builds.recent_step_durations(uniq("none"), 10) == []


# ------------------------------------------------------------------------------------ test cases


async def test_test_cases_stored_in_batches_and_read_by_window(store: Store) -> None:
    db = store.db
    builder = uniq("t")
    first, second, third = [await started_build(db, builder) for _ in range(3)]
    untested = await started_build(db, builder)  # a build without a Test step is not in the window
    for build, outcome in ((first, "passed"), (second, "failed"), (third, "error")):
        [step] = await db.builds.add_steps(build, ["test"])
        cases = [
            CaseResult("test_a", "pkg.A", outcome, 1.5, "" if outcome == "passed" else f"boom {build.number}"),
            CaseResult("test_b", "", "passed", None, ""),
        ]
        await db.builds.add_test_results(build, step, f"rev{build.number}", cases)
    big = [CaseResult(f"t{i}", "Big", "passed", 0.001, "") for i in range(2000)]
    [step] = await db.builds.add_steps(untested, ["noop"])
    await db.builds.add_test_results(untested, step, "", [])  # nothing to store: stays out of the window

    runs = await db.builds.case_runs(builder, 2)
    assert [(r.number, r.revision, r.case.full_name, r.case.outcome) for r in runs] == [
        (third.number, f"rev{third.number}", "pkg.A.test_a", "error"),
        (third.number, f"rev{third.number}", "test_b", "passed"),
        (second.number, f"rev{second.number}", "pkg.A.test_a", "failed"),
        (second.number, f"rev{second.number}", "test_b", "passed"),
    ]
    assert runs[0].case == CaseResult("test_a", "pkg.A", "error", 1.5, f"boom {third.number}")
    assert runs[1].case.duration is None
    only_a = await db.builds.case_runs(builder, 10, ["pkg.A.test_a"])
    assert [(r.number, r.case.outcome) for r in only_a] == [
        (third.number, "error"), (second.number, "failed"), (first.number, "passed")
    ]
    assert await db.builds.case_runs(builder, 10, ["test_b"]) == [r for r in await db.builds.case_runs(builder, 10)
                                                                   if r.case.name == "test_b"]
    assert await db.builds.case_runs(uniq("none"), 10) == []
    failing = await db.builds.failing_cases(builder, third.number, 10)
    assert [c.full_name for c in failing] == ["pkg.A.test_a"]
    assert await db.builds.failing_cases(builder, first.number, 10) == []

    # A large report is one write, and reads back whole.
    other = await started_build(db, uniq("big"))
    [step] = await db.builds.add_steps(other, ["test"])
    await db.builds.add_test_results(other, step, "r", big)
    assert [r.case.name for r in await db.builds.case_runs(other.builder, 1)] == [c.name for c in big]


# ------------------------------------------------------------------------------------ artifacts


async def test_artifacts_recorded_listed_and_replaced(store: Store) -> None:
    db = store.db
    build = await started_build(db, uniq("b"))
    other = await started_build(db, build.builder)
    up, up2 = await db.builds.add_steps(build, ["upload", "upload2"])
    await db.builds.add_steps(other, ["upload"])
    a = await db.builds.add_artifact(build, up, "out.bin", 3 * 2**30, "a" * 64, T0 + 5)
    await db.builds.add_artifact(build, up, "dist.tar", 10, "b" * 64, T0 + 6)
    assert (a.builder, a.number, a.step, a.size) == (build.builder, build.number, "upload", 3 * 2**30)

    listed = await db.builds.list_artifacts(build.builder, build.number)
    assert [(x.name, x.step, x.size, x.sha256) for x in listed] == [
        ("out.bin", "upload", 3 * 2**30, "a" * 64), ("dist.tar", "upload", 10, "b" * 64)
    ]
    assert await db.builds.list_artifacts(other.builder, other.number) == []
    assert await db.builds.get_artifact(build.builder, build.number, "nope") is None

    # The same name again (a rebuilt file) replaces the record.
    await db.builds.add_artifact(build, up2, "out.bin", 5, "c" * 64, T0 + 7)
    got = await db.builds.get_artifact(build.builder, build.number, "out.bin")
    assert got is not None and (got.step, got.size, got.sha256, got.created_at) == ("upload2", 5, "c" * 64, T0 + 7)
    full = await db.builds.get_build(build.builder, build.number)
    assert full is not None and sorted(x.name for x in full.artifacts) == ["dist.tar", "out.bin"]


async def test_listings_keep_only_the_builders_among(store: Store) -> None:
    """What a reader scoped to some builders lists: builds and requests of those builders only,
    the limit counting only them (the narrowing is in the query, not after it)."""
    db = store.db
    seen, hidden = uniq("seen"), uniq("hidden")
    before = await db.builds.list_builds("", 1000)
    for builder in (seen, hidden, hidden):
        await started_build(db, builder)
    newer = [b for b in await db.builds.list_builds("", 1000) if b.id not in {x.id for x in before}]
    assert {b.builder for b in newer} == {seen, hidden}
    assert [b.builder for b in await db.builds.list_builds("", 1, among={seen})] == [seen]
    assert await db.builds.list_builds("", 10, among=set()) == []
    assert await db.builds.list_builds(hidden, 10, among={seen}) == []
    requests = await db.buildsets.list_build_requests("", 0, 1, among={seen})
    assert [r.builder for r in requests] == [seen]
    assert await db.buildsets.list_build_requests("", 0, 10, among=()) == []
