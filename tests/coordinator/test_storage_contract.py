"""Storage contract: the same tests against SQLite (a temp file) and PostgreSQL.

PostgreSQL cases use a fresh, uniquely named database per module on the server of `tests.pg`
($GANTRY_TEST_PG; skipped when it is not usable, failed instead with GANTRY_REQUIRE_PG=1).
Tests share the module's database, so each uses its own builder/worker names and compares ids
relative to what was there before.
"""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.events import Event
from coordinator.domain.model import (
    Build,
    BuildRequest,
    Change,
    NewBuildset,
    PropertyValue,
    SourceStamp,
)
from coordinator.domain.results import Result
from coordinator.domain.status.feed import LogReader
from coordinator.domain.steps.logs import LogWatchers, StepLog
from coordinator.domain.workers.commands import HEADER, STDERR, STDOUT
from coordinator.storage import schema
from coordinator.storage.repository import (
    SqlRepository,
    StorageError,
    database_url,
    open_repository,
)
from coordinator.storage.writer import Tx
from tests import pg

T0 = 1_700_000_000.0


# ------------------------------------------------------------------------------------ backends


@dataclass
class Backend:
    kind: str
    url: str  # the module's shared database
    _fresh: Callable[[], Awaitable[str]]

    async def fresh_url(self) -> str:
        """A new, empty database (for tests that need a pristine schema)."""
        return await self._fresh()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
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
    repo: SqlRepository
    published: list[Event]  # flattened, in the order the publish callback saw them

    @property
    def publish_calls(self) -> int:
        return self._calls[0]

    _calls: list[int] = field(default_factory=lambda: [0])


async def _open(url: str) -> Store:
    published: list[Event] = []
    calls = [0]

    def publish(events: list[Event]) -> None:
        calls[0] += 1
        published.extend(events)

    repo = await open_repository(url, publish)
    return Store(repo, published, calls)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await _open(backend.url)
    try:
        yield s
    finally:
        await s.repo.aclose()


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


async def request_for(repo: SqlRepository, builder: str, priority: int = 0) -> BuildRequest:
    bs_id, reqs = await repo.add_buildset(new_buildset([builder], priority), T0)
    return BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=priority, submitted_at=T0)


async def started_build(repo: SqlRepository, builder: str, coordinator: str = "c1") -> Build:
    req = await request_for(repo, builder)
    assert await repo.claim_request(req.id, coordinator, T0)
    return await repo.start_build(req, "w1", [PropertyValue("p", 1, "Test")], T0 + 1)


async def request_row(repo: SqlRepository, request_id: int) -> sa.Row:  # type: ignore[type-arg]
    async with repo.engine.connect() as conn:
        row = (await conn.execute(sa.select(schema.buildrequests).where(schema.buildrequests.c.id == request_id))).first()
    assert row is not None
    return row


def new_events(store: Store, since: int) -> list[Event]:
    return [e for e in store.published if e.id > since]


def assert_strictly_increasing(ids: list[int]) -> None:
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False)), ids


# ------------------------------------------------------------------------------------ migrations


async def _versions(repo: SqlRepository) -> list[int]:
    async with repo.engine.connect() as conn:
        return [r[0] for r in await conn.execute(sa.select(schema.schema_version.c.version))]


async def test_migrations_are_versioned_and_idempotent(backend: Backend) -> None:
    url = await backend.fresh_url()
    first = await _open(url)
    try:
        assert await _versions(first.repo) == [schema.LATEST]
        ids, _ = await first.repo.add_changes([change(1)], "", T0)
    finally:
        await first.repo.aclose()

    # Opening again is a no-op: same single version row, data kept.
    second = await _open(url)
    try:
        assert await _versions(second.repo) == [schema.LATEST]
        kept = await second.repo.get_change(ids[0])
        assert kept is not None and kept.revision == change(1).revision
        async with second.repo.engine.begin() as conn:
            assert await conn.run_sync(schema.migrate) == (schema.LATEST, schema.LATEST)
        assert await _versions(second.repo) == [schema.LATEST]
    finally:
        await second.repo.aclose()


async def test_database_from_a_newer_gantry_is_refused(backend: Backend) -> None:
    url = await backend.fresh_url()
    s = await _open(url)
    async with s.repo.engine.begin() as conn:
        await conn.execute(schema.schema_version.insert().values(version=schema.LATEST + 1))
    await s.repo.aclose()
    with pytest.raises(StorageError) as info:
        await _open(url)
    text = str(info.value)
    assert str(schema.LATEST + 1) in text and "newer" in text and "upgrade" in text


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
    repo = store.repo
    before = await repo.last_event_id()
    originals = [change(i) for i in range(3)]
    ids, duplicate = await repo.add_changes(originals, "", T0)
    assert not duplicate
    assert len(ids) == 3 and ids == sorted(ids)

    # Committed: visible through another connection, and from another repository instance.
    other = await _open(backend.url)
    try:
        for orig, got in zip(originals, await other.repo.get_changes(ids), strict=True):
            assert (got.author, got.revision, got.branch, got.comments, got.files, got.properties, got.when) == (
                orig.author, orig.revision, orig.branch, orig.comments, orig.files, orig.properties, orig.when
            )
    finally:
        await other.repo.aclose()

    events = new_events(store, before)
    assert [e.kind for e in events] == ["change.added"] * 3
    assert [e.details["change_id"] for e in events] == ids
    assert_strictly_increasing([e.id for e in events])
    # What was published is exactly what is stored.
    assert await repo.events_after(before, 100) == events


async def test_concurrent_writes_publish_in_id_order(store: Store) -> None:
    repo = store.repo
    before = await repo.last_event_id()
    results = await asyncio.gather(*(repo.add_changes([change(i), change(i + 100)], "", T0) for i in range(40)))
    all_ids = [i for ids, _ in results for i in ids]
    assert len(set(all_ids)) == 80
    events = new_events(store, before)
    assert len(events) == 80
    assert_strictly_increasing([e.id for e in events])
    assert store.publish_calls < 40, "concurrent submissions should share group commits"


async def test_idempotency_key_returns_same_ids_and_stores_nothing(store: Store) -> None:
    repo = store.repo
    key = uniq("key")
    ids, duplicate = await repo.add_changes([change(1), change(2)], key, T0)
    assert not duplicate
    last_event = await repo.last_event_id()
    newest = (await repo.list_changes(1))[0].id
    published = len(store.published)

    again, duplicate = await repo.add_changes([change(7, branch="other")], key, T0 + 5)
    assert duplicate and again == ids
    assert (await repo.list_changes(1))[0].id == newest
    assert await repo.last_event_id() == last_event
    assert len(store.published) == published

    # Two submissions with the same key in flight at once: still stored once.
    key2 = uniq("key")
    (a, dup_a), (b, dup_b) = await asyncio.gather(
        repo.add_changes([change(3)], key2, T0), repo.add_changes([change(3)], key2, T0)
    )
    assert a == b and sorted([dup_a, dup_b]) == [False, True]


# ------------------------------------------------------------------------------------ change sources


async def test_change_source_state_is_stored_with_its_changes(store: Store, backend: Backend) -> None:
    repo = store.repo
    name = uniq("GitPoller:repo")
    assert await repo.get_change_source_state(name) is None
    assert await repo.add_polled_changes(name, [], {"main": "a" * 40}, T0, None) == []
    assert await repo.get_change_source_state(name) == {"main": "a" * 40}

    before = await repo.last_event_id()
    ids = await repo.add_polled_changes(
        name, [change(1), change(2)], {"main": "b" * 40, "dev": "c" * 40}, T0, {"main": "a" * 40}
    )
    assert len(ids) == 2 and ids == sorted(ids)
    assert [c.revision for c in await repo.get_changes(ids)] == [change(1).revision, change(2).revision]
    assert [e.details["change_id"] for e in new_events(store, before)] == ids
    other = await _open(backend.url)  # committed: another instance sees it
    try:
        assert await other.repo.get_change_source_state(name) == {"main": "b" * 40, "dev": "c" * 40}
    finally:
        await other.repo.aclose()


async def test_change_source_state_and_changes_are_one_transaction(store: Store) -> None:
    repo = store.repo
    name = uniq("GitPoller:repo")
    await repo.add_polled_changes(name, [], {"main": "a" * 40}, T0, None)
    before = await repo.last_event_id()
    broken = change(3, author=None)  # NOT NULL: the database refuses the second change
    with pytest.raises(sa.exc.IntegrityError):
        await repo.add_polled_changes(
            name, [change(4, author=uniq("first")), broken], {"main": "d" * 40}, T0, {"main": "a" * 40}
        )
    assert await repo.get_change_source_state(name) == {"main": "a" * 40}
    assert await repo.last_event_id() == before
    assert new_events(store, before) == []


async def test_a_stale_change_source_state_stores_nothing(store: Store) -> None:
    """Two coordinators on one database poll the same repository: only the first stores."""
    repo = store.repo
    name = uniq("GitPoller:repo")
    await repo.add_polled_changes(name, [], {"main": "a" * 40}, T0, None)
    with pytest.raises(FailedPrecondition):
        await repo.add_polled_changes(name, [], {"main": "x" * 40}, T0, None)
    await repo.add_polled_changes(name, [change(5)], {"main": "b" * 40}, T0, {"main": "a" * 40})
    before = await repo.last_event_id()
    with pytest.raises(FailedPrecondition):
        await repo.add_polled_changes(name, [change(5)], {"main": "b" * 40}, T0, {"main": "a" * 40})
    assert await repo.last_event_id() == before
    assert await repo.get_change_source_state(name) == {"main": "b" * 40}


# ------------------------------------------------------------------------------------ group commit


@pytest.mark.parametrize("failure", ["python-exception", "database-error"])
async def test_failing_op_in_a_batch_does_not_fail_its_neighbours(store: Store, failure: str) -> None:
    repo = store.repo
    marker = uniq("batch")
    taken_key = uniq("taken")
    await repo.add_changes([change(0)], taken_key, T0)
    before = await repo.last_event_id()
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

    results = await asyncio.gather(*(repo.writer.submit(make(i)) for i in range(6)), return_exceptions=True)

    assert len({id(first_tx[i]) for i in range(bad + 1)}) == 1, "ops were not committed as one batch"
    for i, r in enumerate(results):
        if i == bad:
            assert isinstance(r, ValueError if failure == "python-exception" else sa.exc.IntegrityError)
        else:
            assert r == i
    async with repo.engine.connect() as conn:
        stored = sorted(
            r[0] for r in await conn.execute(
                sa.select(schema.changes.c.author).where(schema.changes.c.author.like(f"{marker}-%"))
            )
        )
    assert stored == [f"{marker}-{i}" for i in range(6) if i != bad]
    events = new_events(store, before)
    assert sorted(e.details["op"] for e in events) == [i for i in range(6) if i != bad]
    assert_strictly_increasing([e.id for e in events])
    assert await repo.events_after(before, 100) == events


def _change_row(author: str) -> dict[str, object]:
    return {
        "author": author, "committer": "", "comments": "", "files_json": "[]", "revision": "r",
        "branch": "b", "repository": "repo", "project": "", "codebase": "", "category": "",
        "properties_json": "{}", "revlink": "",
    }


# ------------------------------------------------------------------------------------ buildsets


async def test_add_buildset_creates_requests_and_events(store: Store) -> None:
    repo = store.repo
    b1, b2 = uniq("b"), uniq("b")
    ids, _ = await repo.add_changes([change(1)], "", T0)
    before = await repo.last_event_id()
    bs = new_buildset([b1, b2], priority=7, change_ids=ids)
    bs_id, reqs = await repo.add_buildset(bs, T0 + 1)
    assert set(reqs) == {b1, b2}

    got = await repo.get_buildset(bs_id)
    assert got is not None
    assert (got.reason, got.scheduler, got.submitted_at, got.change_ids) == ("because", "sched", T0 + 1, ids)
    assert got.sourcestamps == bs.sourcestamps and got.properties == bs.properties
    assert not got.complete and got.result is None

    pending = {r.id: r for r in await repo.unclaimed_requests()}
    for builder, req_id in reqs.items():
        r = pending[req_id]
        assert (r.builder, r.buildset_id, r.priority, r.submitted_at) == (builder, bs_id, 7, T0 + 1)

    events = new_events(store, before)
    assert [e.kind for e in events] == ["buildset.added", "buildrequest.added", "buildrequest.added"]
    assert all(e.buildset_id == bs_id for e in events)
    assert {e.builder: e.details["request_id"] for e in events[1:]} == reqs
    assert sorted(events[0].details["builders"]) == sorted([b1, b2])
    assert await repo.get_buildset(10**9) is None


# ------------------------------------------------------------------------------------ claims


async def test_claim_is_atomic_within_one_coordinator(store: Store) -> None:
    repo = store.repo
    req = await request_for(repo, uniq("b"))
    wins = await asyncio.gather(*(repo.claim_request(req.id, f"c{i}", T0) for i in range(25)))
    assert wins.count(True) == 1
    row = await request_row(repo, req.id)
    assert row.claimed_by == f"c{wins.index(True)}" and row.claimed_at == T0
    assert req.id not in {r.id for r in await repo.unclaimed_requests()}
    assert not await repo.claim_request(req.id, "late", T0)


async def test_claim_is_atomic_across_two_coordinators(store: Store, backend: Backend) -> None:
    """Two repository instances (two engines, as two coordinators) race for the same requests."""
    builder = uniq("b")
    reqs = [await request_for(store.repo, builder) for _ in range(15)]
    other = await _open(backend.url)
    try:
        tries = [
            (repo, req.id, name)
            for req in reqs
            for repo, name in ((store.repo, "c1"), (other.repo, "c2"))
            for _ in range(3)
        ]
        random.Random(4).shuffle(tries)
        wins = await asyncio.gather(*(repo.claim_request(rid, name, T0) for repo, rid, name in tries))
    finally:
        await other.repo.aclose()
    for req in reqs:
        won = [tries[i][2] for i, w in enumerate(wins) if w and tries[i][1] == req.id]
        assert len(won) == 1, f"request {req.id} claimed {len(won)} times"
        assert (await request_row(store.repo, req.id)).claimed_by == won[0]


async def test_a_completed_request_cannot_be_claimed(store: Store) -> None:
    build = await started_build(store.repo, uniq("b"))
    await store.repo.finish_build(build, Result.SUCCESS, "ok", T0 + 2, requeue=False)
    assert not await store.repo.claim_request(build.build_request_id, "c9", T0 + 3)


# ------------------------------------------------------------------------------------ builds


async def test_start_build_numbers_builds_per_builder(store: Store) -> None:
    repo = store.repo
    a, b = uniq("a"), uniq("b")
    before = await repo.last_event_id()
    numbers_a = [(await started_build(repo, a)).number for _ in range(3)]
    first_b = await started_build(repo, b)
    assert numbers_a == [1, 2, 3] and first_b.number == 1

    got = await repo.get_build(a, 2)
    assert got is not None
    assert (got.builder, got.number, got.worker, got.started_at, got.complete) == (a, 2, "w1", T0 + 1, False)
    assert {p.name: p.value for p in got.properties} == {"p": 1, "buildnumber": 2}
    assert got.reason == "because" and got.sourcestamps[0].revision == "abc"
    assert await repo.get_build(a, 4) is None
    assert [x.number for x in await repo.list_builds(a, 10)] == [3, 2, 1]

    started = [e for e in new_events(store, before) if e.kind == "build.started"]
    assert [(e.builder, e.build_number) for e in started] == [(a, 1), (a, 2), (a, 3), (b, 1)]


async def test_start_build_stores_its_steps_and_finish_stores_properties_and_closes_logs(store: Store) -> None:
    """The build path's folded writes: steps with the build, logs closed with their step, final
    properties with the build's end."""
    repo = store.repo
    builder = uniq("b")
    req = await request_for(repo, builder)
    assert await repo.claim_request(req.id, "c1", T0)
    build = await repo.start_build(req, "w1", [], T0 + 1, ["compile", "test"])
    assert [(s.number, s.name) for s in build.steps] == [(0, "compile"), (1, "test")]
    step = build.steps[0]
    step.started_at = T0 + 2
    await repo.start_step(build, step, T0 + 2)
    info = await repo.add_log(step, "stdio", "s")
    await repo.finish_step(build, step, Result.SUCCESS, "compiled", T0 + 3, logs=[info.id])
    await repo.finish_step(build, build.steps[1], Result.SKIPPED, "skipped", T0 + 3)
    await repo.finish_build(build, Result.SUCCESS, "build successful", T0 + 4, requeue=False,
                            properties=[PropertyValue("got_revision", "abc", "Step")])
    stored = await repo.get_build(builder, build.number)
    assert stored is not None
    assert [(s.id, s.name, s.state_string) for s in stored.steps] == [
        (build.steps[0].id, "compile", "compiled"), (build.steps[1].id, "test", "skipped")]
    assert [(lg.name, lg.complete) for lg in stored.steps[0].logs] == [("stdio", True)]
    assert {p.name: p.value for p in stored.properties} == {"got_revision": "abc"}
    assert stored.result == Result.SUCCESS and stored.state_string == "build successful"


async def test_finish_build_completes_request_and_buildset_with_worst_result(store: Store) -> None:
    repo = store.repo
    b1, b2 = uniq("b"), uniq("b")
    bs_id, reqs = await repo.add_buildset(new_buildset([b1, b2]), T0)
    builds = []
    for builder in (b1, b2):
        req = BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=0, submitted_at=T0)
        assert await repo.claim_request(req.id, "c1", T0)
        builds.append(await repo.start_build(req, "w1", [], T0 + 1))
    before = await repo.last_event_id()

    await repo.finish_build(builds[0], Result.WARNINGS, "warnings compile", T0 + 5, requeue=False)
    bs = await repo.get_buildset(bs_id)
    assert bs is not None and not bs.complete
    row = await request_row(repo, reqs[b1])
    assert row.complete and row.result == int(Result.WARNINGS) and row.completed_at == T0 + 5

    await repo.finish_build(builds[1], Result.FAILURE, "failed test", T0 + 6, requeue=False)
    bs = await repo.get_buildset(bs_id)
    assert bs is not None and bs.complete and bs.result == Result.FAILURE

    done = await repo.get_build(b2, 1)
    assert done is not None
    assert (done.result, done.state_string, done.finished_at) == (Result.FAILURE, "failed test", T0 + 6)
    events = new_events(store, before)
    assert [(e.kind, e.result) for e in events] == [
        ("build.finished", Result.WARNINGS),
        ("build.finished", Result.FAILURE),
        ("buildset.finished", Result.FAILURE),
    ]
    assert events[0].details["duration"] == 4.0


async def test_finish_build_with_requeue_unclaims_the_request(store: Store) -> None:
    repo = store.repo
    builder = uniq("b")
    build = await started_build(repo, builder)
    before = await repo.last_event_id()
    await repo.finish_build(build, Result.RETRY, "retry: worker lost", T0 + 2, requeue=True)

    row = await request_row(repo, build.build_request_id)
    assert row.claimed_by is None and row.claimed_at is None and not row.complete
    assert build.build_request_id in {r.id for r in await repo.unclaimed_requests()}
    bs = await repo.get_buildset(build.buildset_id)
    assert bs is not None and not bs.complete
    assert [e.kind for e in new_events(store, before)] == ["build.finished", "buildrequest.retried"]

    req = BuildRequest(id=build.build_request_id, buildset_id=build.buildset_id, builder=builder,
                       priority=0, submitted_at=T0)
    assert await repo.claim_request(req.id, "c2", T0 + 3)
    second = await repo.start_build(req, "w2", [], T0 + 3)
    assert second.number == 2
    await repo.finish_build(second, Result.SUCCESS, "build successful", T0 + 4, requeue=False)
    bs = await repo.get_buildset(build.buildset_id)
    assert bs is not None and bs.complete and bs.result == Result.SUCCESS


async def test_release_orphaned_claims(store: Store) -> None:
    repo = store.repo
    builder = uniq("b")
    build = await started_build(repo, builder, "dead")
    steps = await repo.add_steps(build, ["checkout", "compile"])
    await repo.start_step(build, steps[0], T0 + 2)
    claimed_only = await request_for(repo, builder)
    assert await repo.claim_request(claimed_only.id, "dead", T0)
    others = await request_for(repo, builder)
    assert await repo.claim_request(others.id, "alive", T0)
    await repo.worker_connected(uniq("w"), {}, T0)
    before = await repo.last_event_id()

    assert await repo.release_orphaned_claims("dead", T0 + 10) == 2

    got = await repo.get_build(builder, build.number)
    assert got is not None
    assert got.result == Result.RETRY and got.finished_at == T0 + 10
    assert got.steps[0].result == Result.RETRY and got.steps[0].complete
    assert got.steps[1].result is None and not got.steps[1].complete  # never started
    pending = {r.id for r in await repo.unclaimed_requests()}
    assert {build.build_request_id, claimed_only.id} <= pending
    assert others.id not in pending  # another coordinator's claim is left alone
    assert (await request_row(repo, others.id)).claimed_by == "alive"
    assert not any(w.connected for w in await repo.list_workers())
    events = new_events(store, before)
    assert [(e.kind, e.builder, e.build_number, e.result) for e in events] == [
        ("build.finished", builder, build.number, Result.RETRY)
    ]
    assert await repo.release_orphaned_claims("dead", T0 + 11) == 0


async def test_steps_lifecycle(store: Store) -> None:
    repo = store.repo
    build = await started_build(repo, uniq("b"))
    steps = await repo.add_steps(build, ["a", "b"])
    assert [(s.number, s.name) for s in steps] == [(0, "a"), (1, "b")]
    before = await repo.last_event_id()
    await repo.start_step(build, steps[0], T0 + 2)
    steps[0].started_at = T0 + 2
    steps[0].urls = [("child #1", "builders/child/builds/1")]
    await repo.set_step_urls(build, steps[0], T0 + 3)  # visible while the step runs, and published
    running = await repo.get_build(build.builder, build.number)
    assert running is not None and running.steps[0].urls == [("child #1", "builders/child/builds/1")]
    steps[0].urls = [("report", "https://example.org/r")]
    await repo.finish_step(build, steps[0], Result.WARNINGS, "a (warnings)", T0 + 4)
    await repo.finish_step(build, steps[1], Result.SKIPPED, "skipped", T0 + 4)
    await repo.set_build_properties(build, [PropertyValue("got_revision", "abc", "Step")])
    got = await repo.get_build(build.builder, build.number)
    assert got is not None
    a, b = got.steps
    assert (a.result, a.state_string, a.started_at, a.finished_at, a.urls) == (
        Result.WARNINGS, "a (warnings)", T0 + 2, T0 + 4, [("report", "https://example.org/r")]
    )
    assert (b.result, b.started_at, b.complete) == (Result.SKIPPED, None, True)
    assert got.properties == [PropertyValue("got_revision", "abc", "Step")]
    events = new_events(store, before)
    assert [(e.kind, e.step_number, e.step_name) for e in events] == [
        ("step.started", 0, "a"), ("step.urls", 0, "a"), ("step.finished", 0, "a"), ("step.finished", 1, "b")
    ]
    assert events[1].details == {"urls": [{"name": "child #1", "url": "builders/child/builds/1"}]}
    assert (events[1].builder, events[1].build_number, events[1].at) == (build.builder, build.number, T0 + 3)
    assert events[2].details["duration"] == 2.0


# ------------------------------------------------------------------------------------ logs


async def test_log_chunks_read_back_byte_exact_by_range(store: Store) -> None:
    repo = store.repo
    build = await started_build(repo, uniq("b"))
    (step,) = await repo.add_steps(build, ["compile"])
    info = await repo.add_log(step, "stdio", "s")
    writer = StepLog(info.id, "stdio", repo, LogWatchers())
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
    await repo.finish_log(info.id)

    everything = b"".join(d for _, d in pieces)
    per_channel = {ch: b"".join(d for c, d in pieces if c == ch) for ch in (STDOUT, STDERR, HEADER)}
    stored = await repo.get_log_info(info.id)
    assert stored is not None and stored.complete and stored.size == len(everything)
    found = await repo.get_log(build.builder, build.number, "compile", "stdio")
    assert found is not None and found.id == info.id
    assert (await repo.get_log(build.builder, build.number, "0", "stdio")) == found
    assert await repo.get_log(build.builder, build.number, "compile", "nope") is None

    # Compression happened where it pays, and only there.
    async with repo.engine.connect() as conn:
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

    reader = LogReader(repo, LogWatchers())
    cases = [(everything, 0)] + [(per_channel[ch], ch) for ch in per_channel]
    for expected, channel in cases:
        size = len(expected)
        ranges = [(0, size), (0, 1), (size - 1, 10), (size, 10), (size + 100, 5), (0, 10**9)]
        ranges += [(rnd.randrange(size), rnd.randrange(1, 5000)) for _ in range(40)]
        for offset, limit in ranges:
            want = expected[offset : offset + limit]
            assert _slice(await repo.read_log(info.id, offset, limit, channel), offset, limit, channel) == want, (
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
    assert await repo.read_log(info.id, len(everything), 100, 0) == []


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
    repo = store.repo
    start = await repo.last_event_id()
    for i in range(23):
        await repo.add_changes([change(i)], "", T0)
    pages: list[list[Event]] = []
    since = start
    while True:
        page = await repo.events_after(since, 5)
        pages.append(page)
        if len(page) < 5:
            break
        since = page[-1].id
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [e for p in pages for e in p]
    assert flat == new_events(store, start)
    assert_strictly_increasing([e.id for e in flat])
    assert await repo.last_event_id() == flat[-1].id
    assert await repo.events_after(flat[-1].id, 5) == []
    assert flat[0].kind == "change.added" and flat[0].at == T0


async def test_list_workers_after_connect_and_disconnect(store: Store) -> None:
    repo = store.repo
    name = uniq("w")
    before = await repo.last_event_id()
    await repo.worker_connected(name, {"os": "linux", "arch": "x86_64"}, T0)
    rec = {w.name: w for w in await repo.list_workers()}[name]
    assert (rec.connected, rec.since, rec.info) == (True, T0, {"os": "linux", "arch": "x86_64"})

    await repo.worker_disconnected(name, T0 + 5, "stream closed")
    rec = {w.name: w for w in await repo.list_workers()}[name]
    assert (rec.connected, rec.since) == (False, T0 + 5)

    await repo.worker_connected(name, {"os": "darwin"}, T0 + 9)
    records = [w for w in await repo.list_workers() if w.name == name]
    assert len(records) == 1 and records[0].connected and records[0].info == {"os": "darwin"}

    events = new_events(store, before)
    assert [(e.kind, e.worker) for e in events] == [
        ("worker.connected", name), ("worker.disconnected", name), ("worker.connected", name)
    ]
    assert events[1].details == {"reason": "stream closed"}


# ------------------------------------------------------------------------------------ history for ETAs


async def test_recent_step_durations_reads_the_last_successful_builds(store: Store) -> None:
    repo = store.repo
    builder = uniq("eta")
    results = [Result.SUCCESS, Result.FAILURE, Result.SUCCESS, Result.SUCCESS]
    for i, result in enumerate(results):
        build = await started_build(repo, builder)  # started at T0 + 1
        steps = await repo.add_steps(build, ["compile", "test", "skipped"])
        for step, (start, end) in zip(steps[:2], [(T0 + 1, T0 + 3 + i), (T0 + 3 + i, T0 + 10 + i)], strict=True):
            await repo.start_step(build, step, start)
            step.started_at = start
            await repo.finish_step(build, step, Result.SUCCESS, "done", end)
        await repo.finish_step(build, steps[2], Result.SKIPPED, "skipped", T0 + 10 + i)
        await repo.finish_build(build, result, "done", T0 + 11 + i, requeue=False)
    running = await started_build(repo, builder)
    await repo.add_steps(running, ["compile"])

    samples = await repo.recent_step_durations(builder, 2)
    # Builds 4 and 3 (build 2 failed, build 5 runs); the skipped step never ran.
    assert [(s.build_number, s.build_duration, s.step_name, s.step_duration) for s in samples] == [
        (4, 13.0, "compile", 5.0), (4, 13.0, "test", 7.0),
        (3, 12.0, "compile", 4.0), (3, 12.0, "test", 7.0),
    ]
    assert {s.build_number for s in await repo.recent_step_durations(builder, 10)} == {1, 3, 4}
    assert await repo.recent_step_durations(uniq("none"), 10) == []


# ------------------------------------------------------------------------------------ artifacts


async def test_artifacts_recorded_listed_and_replaced(store: Store) -> None:
    repo = store.repo
    build = await started_build(repo, uniq("b"))
    other = await started_build(repo, build.builder)
    up, up2 = await repo.add_steps(build, ["upload", "upload2"])
    await repo.add_steps(other, ["upload"])
    a = await repo.add_artifact(build, up, "out.bin", 3 * 2**30, "a" * 64, T0 + 5)
    await repo.add_artifact(build, up, "dist.tar", 10, "b" * 64, T0 + 6)
    assert (a.builder, a.number, a.step, a.size) == (build.builder, build.number, "upload", 3 * 2**30)

    listed = await repo.list_artifacts(build.builder, build.number)
    assert [(x.name, x.step, x.size, x.sha256) for x in listed] == [
        ("out.bin", "upload", 3 * 2**30, "a" * 64), ("dist.tar", "upload", 10, "b" * 64)
    ]
    assert await repo.list_artifacts(other.builder, other.number) == []
    assert await repo.get_artifact(build.builder, build.number, "nope") is None

    # The same name again (a rebuilt file) replaces the record.
    await repo.add_artifact(build, up2, "out.bin", 5, "c" * 64, T0 + 7)
    got = await repo.get_artifact(build.builder, build.number, "out.bin")
    assert got is not None and (got.step, got.size, got.sha256, got.created_at) == ("upload2", 5, "c" * 64, T0 + 7)
    full = await repo.get_build(build.builder, build.number)
    assert full is not None and sorted(x.name for x in full.artifacts) == ["dist.tar", "out.bin"]
