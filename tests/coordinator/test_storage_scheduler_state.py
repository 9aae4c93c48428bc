"""Storage contract for scheduler state (migration 3), on memory, SQLite and PostgreSQL: classified
changes commit with their change, are consumed exactly once with the buildset, last run only
moves forward, enabled survives reopening."""

from __future__ import annotations

import asyncio

import pytest

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.model import Classified, SchedulerCommit
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.test_storage_contract import (
    T0,
    Backend,
    Store,
    _open,
    add_buildset,
    add_changes,
    change,
    new_buildset,
    sql_only,
    uniq,
)

# The contract's fixtures: the same memory data / SQLite file / fresh PostgreSQL database per module.
backend = contract.backend
store = contract.store


async def _classify_two_changes(store: Store) -> tuple[str, str, list[int]]:
    """Two changes, taken by scheduler s (both) and t (the second), in one add_changes."""
    s, t = uniq("s"), uniq("t")
    ids, _ = await add_changes(
        store.db, [change(1), change(2, branch="dev")], "", T0,
        [Classified(0, s, "", True), Classified(1, s, "\x1fdev", False), Classified(1, t, "", True)],
    )
    return s, t, ids


async def test_classified_changes_are_stored_with_the_change(store: Store) -> None:
    s, t, ids = await _classify_two_changes(store)
    records = await store.db.schedulers.load_scheduler_state([s, t, uniq("never")])
    rs = records[s]
    assert rs.enabled and rs.last_run is None
    assert [(p.change.id, p.key, p.important, p.classified_at) for p in rs.pending] == [
        (ids[0], "", True, T0), (ids[1], "\x1fdev", False, T0)]
    assert rs.pending[0].change.revision == change(1).revision and rs.pending[0].change.files == change(1).files
    assert [p.change.id for p in records[t].pending] == [ids[1]]
    assert all(r.pending == [] and r.enabled for n, r in records.items() if n not in (s, t))


@sql_only
async def test_classified_changes_commit_with_the_change_in_one_transaction(store: Store) -> None:
    writer = store.sql.writer
    commits = writer.commits
    s, t, _ = await _classify_two_changes(store)
    assert writer.commits == commits + 1
    records = await store.db.schedulers.load_scheduler_state([s, t])
    assert (len(records[s].pending), len(records[t].pending)) == (2, 1)


async def test_buildset_consumes_its_changes_exactly_once(store: Store) -> None:
    db, s, b = store.db, uniq("s"), uniq("b")
    ids, _ = await add_changes(
        db, [change(1), change(2)], "", T0, [Classified(0, s, "", True), Classified(1, s, "", True)])
    # Two submissions of the same changes race: exactly one buildset is stored.
    results = await asyncio.gather(
        *(add_buildset(db, new_buildset([b], change_ids=ids), T0 + 1, SchedulerCommit(s, ids)) for _ in range(2)),
        return_exceptions=True,
    )
    stored = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AlreadyScheduled)]
    assert len(stored) == 1 and len(refused) == 1
    assert (await db.schedulers.load_scheduler_state([s]))[s].pending == []
    assert [r.builder for r in await db.buildsets.unclaimed_requests()].count(b) == 1
    # A partly consumed set is refused as a whole (nothing stored, nothing consumed).
    more, _ = await add_changes(db, [change(3)], "", T0, [Classified(0, s, "", True)])
    with pytest.raises(AlreadyScheduled):
        await add_buildset(db, new_buildset([b]), T0 + 2, SchedulerCommit(s, [ids[0], more[0]]))
    assert [p.change.id for p in (await db.schedulers.load_scheduler_state([s]))[s].pending] == more
    assert [r.builder for r in await db.buildsets.unclaimed_requests()].count(b) == 1


async def test_last_run_only_moves_forward_and_enabled_persists(store: Store, backend: Backend) -> None:
    db, n, b = store.db, uniq("n"), uniq("b")
    await add_buildset(db, new_buildset([b]), T0, SchedulerCommit(n, last_run=T0))
    await add_buildset(db, None, T0 + 60, SchedulerCommit(n, last_run=T0 + 60))  # state only
    with pytest.raises(AlreadyScheduled):
        await add_buildset(db, new_buildset([b]), T0 + 60, SchedulerCommit(n, last_run=T0 + 60))
    assert [r.builder for r in await db.buildsets.unclaimed_requests()].count(b) == 1
    await db.schedulers.set_scheduler_enabled(n, False)
    e = uniq("e")
    await db.schedulers.set_scheduler_enabled(e, False)
    await db.schedulers.set_scheduler_enabled(e, True)

    other = await _open(backend.url)  # another process / after a restart
    try:
        records = await other.db.schedulers.load_scheduler_state([n, e])
    finally:
        await other.db.aclose()
    assert (records[n].enabled, records[n].last_run) == (False, T0 + 60)
    assert (records[e].enabled, records[e].last_run) == (True, None)
