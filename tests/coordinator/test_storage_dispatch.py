"""Storage contract for scheduling (memory, SQLite and PostgreSQL): collapsing requests into a
started one, reading several buildsets, the request list, and build/step state strings."""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.domain.builds import bookkeeping
from coordinator.domain.events import build_state, step_state
from coordinator.domain.model import BuildRequest
from coordinator.domain.results import Result
from coordinator.storage import schema
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.test_storage_contract import (
    T0,
    Backend,
    Store,
    _open,
    add_buildset,
    new_buildset,
    new_events,
    request_for,
    sql_only,
    start_build,
    start_step,
    started_build,
    uniq,
)

# The contract's fixtures (memory, SQLite, and PostgreSQL when reachable), for this module too.
backend = contract.backend
store = contract.store


async def test_collapse_completes_requests_skipped_and_finishes_their_buildsets(store: Store) -> None:
    db = store.db
    builder, other = uniq("b"), uniq("o")
    into = await request_for(db, builder)
    assert await db.buildsets.claim_request(into.id, "c1", T0)
    lone = await request_for(db, builder)  # its buildset has only this request
    bs_id, reqs = await add_buildset(db, new_buildset([builder, other]), T0)  # and one with two
    taken = await request_for(db, builder)
    assert await db.buildsets.claim_request(taken.id, "c2", T0)  # claimed meanwhile: not absorbed
    before = await db.events.last_event_id()

    absorbed = await bookkeeping.collapse(db.book, into, [lone.id, reqs[builder], taken.id], T0 + 5)

    assert absorbed == [lone.id, reqs[builder]]
    events = new_events(store, before)
    assert [(e.kind, e.details.get("request_id"), e.details.get("absorbed_by")) for e in events] == [
        ("buildrequest.collapsed", lone.id, into.id),
        ("buildrequest.collapsed", reqs[builder], into.id),
        ("buildset.finished", None, None),
    ]
    # As in Buildbot, results combine from SUCCESS and SKIPPED is the mildest: a buildset whose
    # requests were all absorbed completes SUCCESS (its changes are built by the absorbing build).
    assert events[-1].buildset_id == lone.buildset_id and events[-1].result == Result.SUCCESS
    lone_bs = await db.buildsets.get_buildset(lone.buildset_id)
    assert lone_bs is not None and lone_bs.complete and lone_bs.result == Result.SUCCESS
    shared = await db.buildsets.get_buildset(bs_id)
    assert shared is not None and not shared.complete  # its other request is still pending
    listed = {r.id: r for r in await db.buildsets.list_build_requests(builder, 0, 100)}
    assert (listed[lone.id].complete, listed[lone.id].result, listed[lone.id].absorbed_by) == (
        True, Result.SKIPPED, into.id)
    assert listed[into.id].absorbed_by == 0 and listed[into.id].claimed
    assert listed[taken.id].absorbed_by == 0 and not listed[taken.id].complete
    assert [r.id for r in await db.buildsets.list_build_requests("", bs_id, 10)] == sorted(reqs.values(), reverse=True)
    # Already absorbed: nothing happens a second time.
    assert await bookkeeping.collapse(db.book, into, [lone.id], T0 + 6) == []
    assert lone.id not in {r.id for r in await db.buildsets.unclaimed_requests()}
    assert not await db.buildsets.claim_request(lone.id, "c1", T0 + 7)


async def test_get_buildsets_reads_many_at_once(store: Store) -> None:
    db = store.db
    ids = [(await request_for(db, uniq("b"))).buildset_id for _ in range(3)]
    got = await db.buildsets.get_buildsets([*ids, 10**9])
    assert sorted(got) == sorted(ids)
    assert all(got[i].sourcestamps[0].branch == "main" for i in ids)


async def test_build_and_step_state_strings_are_stored_and_published(store: Store) -> None:
    db = store.db
    build = await started_build(db, uniq("b"))
    steps = await db.builds.add_steps(build, ["one"])
    await start_step(db, build, steps[0], T0 + 2)
    before = await db.events.last_event_id()
    text = "waiting for lock deploy"
    await db.builds.set_build_state(build, text, [build_state(build, text, T0 + 3)])
    text = "waiting for lock net"
    await db.builds.set_step_state(steps[0], text, [step_state(build, steps[0], text, T0 + 4)])
    got = await db.builds.get_build(build.builder, build.number)
    assert got is not None and got.state_string == "waiting for lock deploy"
    assert got.steps[0].state_string == "waiting for lock net"
    events = new_events(store, before)
    assert [(e.kind, e.step_number, e.details["state_string"]) for e in events] == [
        ("build.state", -1, "waiting for lock deploy"),
        ("step.state", 0, "waiting for lock net"),
    ]


@sql_only
async def test_v3_adds_the_collapses_table(backend: Backend) -> None:
    s = await _open(await backend.fresh_url())
    try:
        async with s.sql.engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert schema.buildrequest_collapses.name in names
    finally:
        await s.db.aclose()


async def test_cancel_completes_only_unclaimed_requests_and_finishes_their_buildsets(store: Store) -> None:
    db = store.db
    builder, other = uniq("b"), uniq("o")
    lone = await request_for(db, builder)
    bs_id, reqs = await add_buildset(db, new_buildset([builder, other]), T0)
    taken = await request_for(db, builder)
    assert await db.buildsets.claim_request(taken.id, "c1", T0)
    before = await db.events.last_event_id()

    cancelled, now = await bookkeeping.cancel(db.book, [lone.id, reqs[builder], taken.id, 999_999], "no need", T0 + 5)
    assert cancelled == [lone.id, reqs[builder]]
    assert sorted(now) == sorted([lone.id, reqs[builder], taken.id])  # the unknown id is absent
    assert (now[lone.id].complete, now[lone.id].result, now[lone.id].completed_at) == (True, Result.CANCELLED, T0 + 5)
    assert now[taken.id].claimed and not now[taken.id].complete
    assert not await db.buildsets.claim_request(lone.id, "c1", T0 + 6)  # a cancelled request never starts

    events = new_events(store, before)
    assert [(e.kind, e.buildset_id, e.result) for e in events] == [
        ("buildrequest.cancelled", lone.buildset_id, Result.CANCELLED),
        ("buildrequest.cancelled", bs_id, Result.CANCELLED),
        ("buildset.finished", lone.buildset_id, Result.CANCELLED),  # its only request
    ]
    assert events[0].details == {"request_id": lone.id, "reason": "no need"} and events[0].builder == builder
    # The second buildset finishes once its other request is done, with the worst result.
    [req] = [r for r in await db.buildsets.list_build_requests(other, bs_id, 10)]
    assert await db.buildsets.claim_request(req.id, "c1", T0)
    build = await start_build(db, BuildRequest(id=req.id, buildset_id=bs_id, builder=other, priority=0,
                                               submitted_at=T0), "w", [], T0 + 6)
    await bookkeeping.finish_build(db.book, build, Result.SUCCESS, "ok", T0 + 7)
    got = await db.buildsets.get_buildset(bs_id)
    assert got is not None and got.complete and got.result == Result.CANCELLED

    again, _ = await bookkeeping.cancel(db.book, [lone.id], "twice", T0 + 8)
    assert again == []
