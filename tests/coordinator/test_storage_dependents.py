"""A Dependent makes exactly one downstream buildset per successful upstream buildset, also when
the upstream finished while no coordinator ran (migration 7): the real scheduling objects on each
storage (memory, SQLite and PostgreSQL), "restarted" by opening the database again."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from coordinator.domain.builds import bookkeeping
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import EventBus
from coordinator.domain.model import BuildRequest, Classified, SchedulerCommit, SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.force import ForceScheduler
from coordinator.domain.scheduling.schedulers import SingleBranchScheduler
from coordinator.domain.scheduling.triggerable import Dependent
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.workers.sessions import WorkerRegistry
from coordinator.storage import schema
from coordinator.storage.memory import MemoryStorage
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.fakes import FakeClock
from tests.coordinator.test_storage_contract import (
    T0,
    Backend,
    Storage,
    _open,
    add_buildset,
    add_changes,
    change,
    new_buildset,
    start_build,
)

backend = contract.backend


@pytest.fixture
async def url(backend: Backend) -> str:
    return await backend.fresh_url()


class Coordinator:
    """One coordinator's life on the database: a service with `schedulers`, started as app.py does."""

    def __init__(self, db: Storage, schedulers: list[object]) -> None:
        clock, bus = FakeClock(start=T0 + 100), EventBus()
        workers = WorkerRegistry(clock.now, db.workers)
        self.db = db
        self.dispatcher = Dispatcher(db.buildsets, db.builds, db.logs, db.book, workers, clock, LogWatchers(), "c1")
        submitter = BuildsetSubmitter(db.buildsets, db.book, clock, self.dispatcher)
        self.schedulers = SchedulerControl(db.schedulers, clock, submitter)
        self.downstream = Downstream(db.buildsets, submitter, self.schedulers, self.dispatcher)
        self.dispatcher.trigger_port = self.downstream
        bus.add_listener(self.downstream.on_event)
        self.schedulers.configure(schedulers)  # type: ignore[arg-type]


async def started(url: str, *schedulers: object) -> Coordinator:
    """Start a coordinator as app.py does, let its start-up work finish, stop it."""
    store = await _open(url)
    c = Coordinator(store.db, list(schedulers))
    try:
        await c.schedulers.start()
        await c.downstream.catch_up()
        await c.schedulers.aclose()  # waits for any background work
        await c.downstream.aclose()
        return c
    finally:
        await store.db.aclose()


async def upstream_buildset(url: str, result: Result | None, scheduler: str = "up", revision: str = "abc") -> int:
    """A buildset of `scheduler` whose build ends with `result` (None: still running), written
    while no coordinator service runs (as if the coordinator died right after storing it)."""
    store = await _open(url)
    db = store.db
    try:
        bs = new_buildset(["u"])
        bs.scheduler = scheduler
        bs.sourcestamps = [SourceStamp(repository="r", branch="main", revision=revision, project="p")]
        bs_id, reqs = await add_buildset(db, bs, T0)
        if result is not None:
            req = BuildRequest(id=reqs["u"], buildset_id=bs_id, builder="u", priority=0, submitted_at=T0)
            assert await db.buildsets.claim_request(req.id, "c0", T0)
            build = await start_build(db, req, "w", [], T0 + 1)
            await bookkeeping.finish_build(db.book, build, result, "done", T0 + 2)
        return bs_id
    finally:
        await db.aclose()


async def finish(url: str, buildset_id: int, result: Result) -> None:
    store = await _open(url)
    db = store.db
    try:
        [req] = await db.buildsets.list_build_requests("", buildset_id, 10)
        assert await db.buildsets.claim_request(req.id, "c0", T0)
        build = await start_build(db, req, "w", [], T0 + 1)
        await bookkeeping.finish_build(db.book, build, result, "done", T0 + 2)
    finally:
        await db.aclose()


async def downstream(url: str, scheduler: str = "down") -> list[tuple[str, str]]:
    """(reason, revision) of every stored buildset of `scheduler`, in id order."""
    store = await _open(url)
    try:
        out = []
        for i in await buildset_ids(store.db, scheduler):
            got = await store.db.buildsets.get_buildset(i)
            assert got is not None
            out.append((got.reason, got.sourcestamps[0].revision))
        return out
    finally:
        await store.db.aclose()


async def buildset_ids(db: Storage, scheduler: str) -> list[int]:
    """The ids of the stored buildsets of `scheduler` (no port lists those: read the tables)."""
    if isinstance(db, MemoryStorage):
        return sorted(i for i, bs in db.data.buildsets.items() if bs.scheduler == scheduler)
    bs = schema.buildsets
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(bs.c.id).where(bs.c.scheduler == scheduler).order_by(bs.c.id))
        return [r.id for r in rows]


def schedulers() -> list[object]:
    up = ForceScheduler("up", ["u"])
    return [up, Dependent("down", upstream=up, builderNames=["d"])]


async def test_upstream_finished_while_down_gets_exactly_one_downstream_after_start(url: str) -> None:
    await started(url, *schedulers())  # the Dependent is configured: it starts from here
    ok = await upstream_buildset(url, Result.SUCCESS, revision="r-ok")
    await upstream_buildset(url, Result.FAILURE, revision="r-failed")
    running = await upstream_buildset(url, None, revision="r-running")
    warned = await upstream_buildset(url, Result.WARNINGS, revision="r-warned")
    await upstream_buildset(url, Result.SUCCESS, scheduler="other", revision="r-other")

    c = await started(url, *schedulers())
    assert await downstream(url) == [
        (f"downstream of buildset {ok} (scheduler 'up')", "r-ok"),
        (f"downstream of buildset {warned} (scheduler 'up')", "r-warned"),
    ]
    assert c.dispatcher.pending_count("d") == 2  # queued at once, not only stored

    await started(url, *schedulers())  # a second start makes nothing again
    assert len(await downstream(url)) == 2

    # The upstream buildset still running at the last stop finishes while no coordinator runs:
    # below the watermark's next move, it is not forgotten.
    await finish(url, running, Result.SUCCESS)
    await started(url, *schedulers())
    await started(url, *schedulers())
    assert [rev for _, rev in await downstream(url)] == ["r-ok", "r-warned", "r-running"]


async def test_a_new_dependent_does_not_build_history(url: str) -> None:
    await upstream_buildset(url, Result.SUCCESS)
    await started(url, *schedulers())
    await started(url, *schedulers())
    assert await downstream(url) == []
    await upstream_buildset(url, Result.SUCCESS, revision="new")
    await started(url, *schedulers())
    assert [rev for _, rev in await downstream(url)] == ["new"]


async def test_the_downstream_is_stored_at_most_once_even_when_submitted_concurrently(url: str) -> None:
    up_id = await upstream_buildset(url, Result.SUCCESS)
    store = await _open(url)
    db = store.db
    try:
        commit = SchedulerCommit("down", upstream_buildset_id=up_id)
        results = await asyncio.gather(
            *(add_buildset(db, new_buildset(["d"]), T0, commit) for _ in range(3)), return_exceptions=True
        )
        assert sum(isinstance(r, tuple) for r in results) == 1
        assert sum(isinstance(r, AlreadyScheduled) for r in results) == 2
        with pytest.raises(AlreadyScheduled):  # also later, in a transaction of its own
            await add_buildset(db, new_buildset(["d"]), T0, commit)
    finally:
        await db.aclose()
    assert len(await downstream(url, "sched")) == 1


async def test_a_disabled_dependent_skips_what_finished_meanwhile_for_good(url: str) -> None:
    await started(url, *schedulers())
    store = await _open(url)
    await store.db.schedulers.set_scheduler_enabled("down", False)
    await store.db.aclose()
    await upstream_buildset(url, Result.SUCCESS, revision="while-disabled")
    await started(url, *schedulers())
    store = await _open(url)
    await store.db.schedulers.set_scheduler_enabled("down", True)
    await store.db.aclose()
    await started(url, *schedulers())
    assert await downstream(url) == []
    await upstream_buildset(url, Result.SUCCESS, revision="enabled")
    await started(url, *schedulers())
    assert [rev for _, rev in await downstream(url)] == ["enabled"]


async def test_removed_schedulers_lose_pending_changes_but_keep_enabled_and_last_run(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gone = SingleBranchScheduler("gone", branch="main", builders=["b"], treeStableTimer=60)
    stays = SingleBranchScheduler("stays", branch="main", builders=["b"], treeStableTimer=60)
    store = await _open(url)
    await add_changes(
        store.db, [change(1), change(2)], "", T0,
        [Classified(0, "gone", "", True), Classified(1, "gone", "", True), Classified(1, "stays", "", True)],
    )
    await store.db.schedulers.set_scheduler_enabled("gone", False)
    await add_buildset(store.db, None, T0, SchedulerCommit("gone", last_run=T0 + 5))
    await store.db.aclose()

    caplog.set_level("INFO", logger="coordinator.domain.scheduling.control")
    await started(url, stays)
    assert "scheduler 'gone' is no longer configured: dropped its 2 pending change(s)" in caplog.text
    assert "'stays' is no longer configured" not in caplog.text
    store = await _open(url)
    try:
        records = await store.db.schedulers.load_scheduler_state(["gone", "stays"])
        assert records["gone"].pending == [] and len(records["stays"].pending) == 1
        assert records["gone"].enabled is False and records["gone"].last_run == T0 + 5
    finally:
        await store.db.aclose()
    caplog.clear()
    await started(url, stays, gone)
    assert "no longer configured" not in caplog.text
    assert gone.enabled is False  # it came back with its stored flag
