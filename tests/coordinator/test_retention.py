"""Retention on a database of 10 000 builds (SQLite and PostgreSQL, filled with batched inserts):
the dry run counts what a sweep deletes, the sweep deletes it in bounded batches that other
writes get in between, failing builds are kept longer, running builds are never touched, and
SQLite gives the space back to the file system."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from coordinator.domain.builds.retention import Janitor, Retention, rule_for
from coordinator.domain.events import Event
from coordinator.domain.results import Result
from coordinator.storage import schema
from coordinator.storage.sql import SqlStorage, database_url, open_storage
from tests import pg
from tests.coordinator.fakes import FakeClock

N = 10_000
T0 = 1_700_000_000.0
CHUNK = os.urandom(1024)  # incompressible: the file really grows, and shrinks


def published(_: list[Event]) -> None:
    pass


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    if request.param == "sqlite":
        storage = await open_storage(database_url(None, tmp_path), published)
        try:
            yield storage
        finally:
            await storage.aclose()
        return
    async with pg.database("gantry_retention") as url:
        storage = await open_storage(database_url(url, tmp_path), published)
        try:
            yield storage
        finally:
            await storage.aclose()


def fill(conn: sa.Connection) -> None:
    """N finished builds of builder "b" (build i finished at T0 + i; every 10th FAILURE), each
    with a step, a stdio log of one 1 KiB chunk and an artifact row; plus one running build."""
    conn.execute(
        schema.buildsets.insert().values(
            id=1,
            reason="r",
            scheduler="s",
            submitted_at=T0,
            sourcestamps_json="[]",
            properties_json="[]",
            change_ids_json="[]",
            complete=False,
        )
    )
    conn.execute(schema.buildrequests.insert().values(id=1, buildset_id=1, builder="b", submitted_at=T0))
    conn.execute(
        schema.builds.insert(),
        [
            dict(
                id=i,
                builder="b",
                number=i,
                worker="w",
                buildrequest_id=1,
                buildset_id=1,
                started_at=T0 + i - 1,
                finished_at=T0 + i,
                result=int(Result.FAILURE if i % 10 == 0 else Result.SUCCESS),
            )
            for i in range(1, N + 1)
        ]
        + [
            dict(
                id=N + 1,
                builder="b",
                number=N + 1,
                worker="w",
                buildrequest_id=1,
                buildset_id=1,
                started_at=T0,
                finished_at=None,
                result=None,
            )
        ],
    )
    conn.execute(schema.steps.insert(), [dict(id=i, build_id=i, number=0, name="s") for i in range(1, N + 2)])
    conn.execute(
        schema.logs.insert(),
        [dict(id=i, step_id=i, name="stdio", type="s", size=len(CHUNK), complete=True) for i in range(1, N + 2)],
    )
    conn.execute(
        schema.logchunks.insert(),
        [
            dict(log_id=i, seq=1, channel=1, offset=0, channel_offset=0, length=len(CHUNK), compressed=0, data=CHUNK)
            for i in range(1, N + 2)
        ],
    )
    conn.execute(
        schema.artifacts.insert(),
        [
            dict(build_id=i, step_id=i, name="out.tar", size=1, sha256="0" * 64, created_at=T0 + i)
            for i in range(1, N + 2)
        ],
    )
    conn.execute(
        schema.test_cases.insert(),
        [
            dict(build_id=i, step_id=i, name="t", classname="c", outcome="passed", duration=0.1, message="",
                 revision="r")
            for i in range(1, N + 2)
        ],
    )


async def count(db: SqlStorage, table: sa.Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar() or 0)


async def test_a_sweep_of_10000_builds(db: SqlStorage) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(fill)
    sqlite = db.engine.dialect.name == "sqlite"
    pages_before = await _pages(db) if sqlite else 0
    now = T0 + N
    # Logs of builds older than 4000 s go; builds older than 6000 s go, failing ones after 9000 s;
    # artifacts follow their builds except that failing builds' are kept as long as the build.
    rules = [
        Retention(
            logHorizon=4000,
            buildHorizon=6000,
            failedBuildHorizon=9000,
            artifactHorizon=5000,
            failedArtifactHorizon=9000,
        )
    ]
    removed_files: list[tuple[str, int, str]] = []
    janitor = Janitor(
        db.retention,
        FakeClock(start=now),
        lambda: rules,
        lambda: ["b"],
        lambda b, n, name: removed_files.append((b, n, name)),
        batch=500,
    )

    dry = await janitor.sweep(dry_run=True)
    old_builds = [i for i in range(1, N + 1) if T0 + i < now - 6000 and i % 10] + [
        i for i in range(1, N + 1) if T0 + i < now - 9000 and i % 10 == 0
    ]
    assert dry.deleted[("b", "builds")] == len(old_builds) == 3600 + 99
    assert dry.deleted[("b", "logs")] == sum(1 for i in range(1, N + 1) if T0 + i < now - 4000)
    assert await count(db, schema.builds) == N + 1  # a dry run deletes nothing

    # Other writes are not held up behind the sweep: one submitted after the first batch
    # commits before the sweep ends.
    order: list[str] = []
    sizes: list[int] = []
    expire = db.retention.expire

    async def spying(expiry, limit):  # type: ignore[no-untyped-def]
        result = await expire(expiry, limit)
        if result[0]:
            sizes.append(result[0])
        if result[0] and not order:
            order.append("first batch")
            await db.workers.set_worker_hold("w", None, [])  # a build's write, in effect
            order.append("other write")
        return result

    db.retention.expire = spying  # type: ignore[method-assign]
    report = await janitor.sweep()
    order.append("sweep done")
    assert order == ["first batch", "other write", "sweep done"]

    assert report.deleted == dry.deleted
    assert report.batches == len(sizes) >= math.ceil(sum(report.deleted.values()) / 500)
    assert max(sizes) == 500 and sum(sizes) == sum(report.deleted.values())  # bounded batches
    kept = sorted(set(range(1, N + 2)) - set(old_builds))
    async with db.engine.connect() as conn:
        numbers = sorted((await conn.execute(sa.select(schema.builds.c.number))).scalars())
        chunks = await conn.execute(sa.select(sa.func.count()).select_from(schema.logchunks))
        running_log = (await conn.execute(sa.select(schema.logs.c.type).where(schema.logs.c.id == N + 1))).scalar()
    assert numbers == kept
    assert N + 1 in numbers and running_log == "s"  # the running build is untouched
    assert chunks.scalar() == sum(1 for i in kept if i == N + 1 or T0 + i >= now - 4000)
    assert await count(db, schema.steps) == len(kept) and await count(db, schema.logs) == len(kept)
    assert await count(db, schema.test_cases) == len(kept)  # test cases go with their builds
    assert {n for _, n, _ in removed_files} >= set(old_builds)  # their artifact files go too
    assert all(b == "b" and name == "out.tar" for b, _, name in removed_files)

    again = await janitor.sweep()
    assert sum(again.deleted.values()) == 0  # nothing left past its horizon
    if sqlite:
        assert report.reclaimed.startswith("SQLite: ") and "free pages returned" in report.reclaimed
        assert await _free_pages(db) == 0
        assert await _pages(db) < pages_before * 0.7  # the file shrank with what was deleted
    else:
        assert report.reclaimed.startswith("PostgreSQL: VACUUM")


async def _pages(db: SqlStorage) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.exec_driver_sql("PRAGMA page_count")).scalar() or 0)


async def _free_pages(db: SqlStorage) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.exec_driver_sql("PRAGMA freelist_count")).scalar() or 0)


def test_rules_per_builder_and_their_checks() -> None:
    default, special = Retention(logHorizon=10), Retention(logHorizon=99, builders=["big"])
    assert rule_for([special, default], "big") is special
    assert rule_for([special, default], "other") is default
    assert rule_for([special], "other") is None
    assert Retention(buildHorizon=-1).problems() == ["the builds horizon must be positive, not -1s"]
    assert Retention(buildHorizon=10, failedBuildHorizon=5).problems() == [
        "failing builds' builds horizon (5s) is shorter than the others' (10s)"
    ]


async def test_the_in_memory_store_sweeps_alike() -> None:
    from coordinator.domain.model import Build, CaseResult, LogChunk, LogInfo, Step
    from coordinator.storage.memory import MemoryStorage, _ArtifactRow

    storage = MemoryStorage()
    data = storage.data
    for i in range(1, 31):
        failing = i % 10 == 0
        data.builds[i] = Build(
            id=i,
            builder="b",
            number=i,
            worker="w",
            build_request_id=1,
            buildset_id=1,
            started_at=T0,
            finished_at=None if i == 30 else T0 + i,
            result=None if i == 30 else (Result.FAILURE if failing else Result.SUCCESS),
        )
        data.build_ids[("b", i)] = i
        data.steps[i] = Step(id=i, build_id=i, number=0, name="s")
        data.logs[i] = LogInfo(id=i, step_id=i, name="stdio", type="s")
        data.logchunks[i] = {1: LogChunk(1, b"x", 0, 0)}
        data.artifacts[i] = _ArtifactRow(i, i, "a", 1, "0" * 64, T0)
        data.test_cases[i] = (i, "rev", CaseResult("t"))
    rules = [Retention(logHorizon=20, buildHorizon=25, failedBuildHorizon=29)]
    janitor = Janitor(storage.retention, FakeClock(start=T0 + 30), lambda: rules, lambda: ["b"], batch=4)
    dry = await janitor.sweep(dry_run=True)
    report = await janitor.sweep()
    assert report.deleted == dry.deleted == {("b", "logs"): 9, ("b", "builds"): 4}
    assert sorted(data.builds) == list(range(5, 31))  # builds finished before T0 + 5 went
    assert sorted(data.test_cases) == list(range(5, 31))  # their test cases with them
    assert sorted(data.logchunks) == list(range(10, 31))  # logs of builds finished before T0 + 10 went


async def test_a_deleted_log_says_so() -> None:
    from coordinator.domain.errors import NotFound
    from coordinator.domain.model import Build, LogInfo, Step
    from coordinator.domain.status.feed import LogReader
    from coordinator.domain.steps.logs import LogWatchers
    from coordinator.storage.memory import MemoryStorage

    storage = MemoryStorage()
    data = storage.data
    data.builds[1] = Build(
        id=1,
        builder="b",
        number=1,
        worker="w",
        build_request_id=1,
        buildset_id=1,
        started_at=T0,
        finished_at=T0 + 1,
        result=Result.SUCCESS,
    )
    data.build_ids[("b", 1)] = 1
    data.steps[1] = Step(id=1, build_id=1, number=0, name="s")
    data.logs[1] = LogInfo(id=1, step_id=1, name="stdio", type="s")
    janitor = Janitor(storage.retention, FakeClock(start=T0 + 100), lambda: [Retention(logHorizon=10)], lambda: ["b"])
    await janitor.sweep()
    with pytest.raises(NotFound, match=r"the log 'stdio' of step 's' of build b/1 was deleted \(logHorizon\)"):
        await LogReader(storage.logs, LogWatchers(), storage.builds).find("b", 1, "s", "stdio")


# ---------------------------------------------------------------- events (eventHorizon)
EVENTS = 20_000
DAY = 24 * 3600.0


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def events_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A storage holding EVENTS events, event i at T0 + i."""
    from coordinator.storage.memory import MemoryStorage

    if request.param == "memory":
        memory = MemoryStorage()
        memory.data.events = [Event("build.started", T0 + i, builder="b").with_id(i) for i in range(1, EVENTS + 1)]
        yield memory
        return
    rows = [dict(id=i, kind="build.started", at=T0 + i, builder="b") for i in range(1, EVENTS + 1)]
    async with contextlib.AsyncExitStack() as stack:
        url = None
        if request.param == "postgresql":
            url = await stack.enter_async_context(pg.database("gantry_event_retention"))
        storage = await open_storage(database_url(url, tmp_path), published)
        stack.push_async_callback(storage.aclose)
        async with storage.engine.begin() as conn:
            await conn.execute(schema.events.insert(), rows)
        yield storage


async def _replay(storage: Any, since: int) -> list[int]:
    from coordinator.domain.events import EventBus
    from coordinator.domain.status.feed import StatusFeed

    bus = EventBus()
    bus.last_id = EVENTS
    feed = StatusFeed(storage.events, storage.builds, bus)
    seen: list[int] = []
    async for event in feed.follow(since):
        assert event is not None
        seen.append(event.id)
        if event.id == EVENTS:
            break
    return seen


async def test_events_past_the_horizon_go_in_batches_and_a_stream_from_before_is_told(events_db: Any) -> None:
    from coordinator.domain.errors import EventsPruned

    storage = events_db
    now = T0 + 10_000.5 + 7 * DAY  # the default eventHorizon (7 days) reaches event 10 000
    sizes: list[int] = []
    expire = storage.retention.expire_events

    async def counting(before: float, keep_from: int, limit: int) -> int:
        sizes.append(await expire(before, keep_from, limit))
        return sizes[-1]

    storage.retention.expire_events = counting
    # A notifier that has handled up to event 6000 keeps the rest for it.
    await storage.outbox.set_notifier_cursor("notifications", 6000)
    janitor = Janitor(storage.retention, FakeClock(start=now), lambda: [], lambda: [], event_batch=2500)
    assert (await janitor.sweep(dry_run=True)).deleted == {("", "events"): 6000}
    report = await janitor.sweep()
    assert report.deleted == {("", "events"): 6000} and sizes == [2500, 2500, 1000, 0]  # bounded batches
    assert await storage.events.pruned_through() == 6000
    assert [e.id for e in await storage.events.events_after(0, 2)] == [6001, 6002]
    assert await storage.events.last_event_id() == EVENTS

    # Resuming from a deleted id is refused, saying how far events were deleted; from the
    # last deleted one (or later) goes on exactly; from 0 starts at the oldest kept.
    with pytest.raises(EventsPruned, match=r"events after #100 are no longer stored.*up to #6000"):
        await _replay(storage, 100)
    assert await _replay(storage, 6000) == list(range(6001, EVENTS + 1))
    assert (await _replay(storage, 0))[0] == 6001

    # The notifier caught up: the rest past the horizon goes, never the newest event.
    await storage.outbox.set_notifier_cursor("notifications", EVENTS)
    assert (await janitor.sweep()).deleted == {("", "events"): 4000}
    far = Janitor(storage.retention, FakeClock(start=now + 365 * DAY), lambda: [], lambda: [], event_batch=2500)
    assert (await far.sweep()).deleted == {("", "events"): EVENTS - 10_000 - 1}
    assert [e.id for e in await storage.events.events_after(0, 10)] == [EVENTS]  # ids are never reused
    assert await storage.events.last_event_id() == EVENTS
    # eventHorizon=None on the default rule keeps events forever.
    keep = Janitor(storage.retention, FakeClock(start=now + 999 * DAY), lambda: [Retention(eventHorizon=None)],
                   lambda: [])
    assert (await keep.sweep()).deleted == {}


def test_the_event_horizon_is_one_for_all_events() -> None:
    from coordinator.domain.builds.retention import DEFAULT_EVENT_HORIZON, event_horizon

    assert event_horizon([]) == DEFAULT_EVENT_HORIZON == 7 * DAY
    assert event_horizon([Retention(logHorizon=5, builders=["x"]), Retention(eventHorizon=3600)]) == 3600
    assert Retention(eventHorizon=60, builders=["x"]).problems() == [
        "eventHorizon is one for all events: give it on the Retention without builders"
    ]
    assert Retention(eventHorizon=0).problems() == [
        "the eventHorizon must be positive (or None to keep events), not 0s"
    ]
