"""Storage contract for scheduler state (migration 3), on SQLite and PostgreSQL: classified
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
    change,
    new_buildset,
    uniq,
)

# The contract's fixtures: the same SQLite file / fresh PostgreSQL database per module.
backend = contract.backend
store = contract.store


async def test_classified_changes_commit_with_the_change_in_one_transaction(store: Store) -> None:
    repo, s, t = store.repo, uniq("s"), uniq("t")
    commits = repo.writer.commits
    ids, _ = await repo.add_changes(
        [change(1), change(2, branch="dev")], "", T0,
        [Classified(0, s, "", True), Classified(1, s, "\x1fdev", False), Classified(1, t, "", True)],
    )
    assert repo.writer.commits == commits + 1
    records = await repo.load_scheduler_state([s, t, uniq("never")])
    rs = records[s]
    assert rs.enabled and rs.last_run is None
    assert [(p.change.id, p.key, p.important, p.classified_at) for p in rs.pending] == [
        (ids[0], "", True, T0), (ids[1], "\x1fdev", False, T0)]
    assert rs.pending[0].change.revision == change(1).revision and rs.pending[0].change.files == change(1).files
    assert [p.change.id for p in records[t].pending] == [ids[1]]
    assert all(r.pending == [] and r.enabled for n, r in records.items() if n not in (s, t))


async def test_buildset_consumes_its_changes_exactly_once(store: Store) -> None:
    repo, s, b = store.repo, uniq("s"), uniq("b")
    ids, _ = await repo.add_changes([change(1), change(2)], "", T0, [Classified(0, s, "", True), Classified(1, s, "", True)])
    # Two submissions of the same changes race: exactly one buildset is stored.
    results = await asyncio.gather(
        *(repo.add_buildset(new_buildset([b], change_ids=ids), T0 + 1, SchedulerCommit(s, ids)) for _ in range(2)),
        return_exceptions=True,
    )
    stored = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AlreadyScheduled)]
    assert len(stored) == 1 and len(refused) == 1
    assert (await repo.load_scheduler_state([s]))[s].pending == []
    assert [r.builder for r in await repo.unclaimed_requests()].count(b) == 1
    # A partly consumed set is refused as a whole (nothing stored, nothing consumed).
    more, _ = await repo.add_changes([change(3)], "", T0, [Classified(0, s, "", True)])
    with pytest.raises(AlreadyScheduled):
        await repo.add_buildset(new_buildset([b]), T0 + 2, SchedulerCommit(s, [ids[0], more[0]]))
    assert [p.change.id for p in (await repo.load_scheduler_state([s]))[s].pending] == more
    assert [r.builder for r in await repo.unclaimed_requests()].count(b) == 1


async def test_last_run_only_moves_forward_and_enabled_persists(store: Store, backend: Backend) -> None:
    repo, n, b = store.repo, uniq("n"), uniq("b")
    await repo.add_buildset(new_buildset([b]), T0, SchedulerCommit(n, last_run=T0))
    await repo.add_buildset(None, T0 + 60, SchedulerCommit(n, last_run=T0 + 60))  # state only
    with pytest.raises(AlreadyScheduled):
        await repo.add_buildset(new_buildset([b]), T0 + 60, SchedulerCommit(n, last_run=T0 + 60))
    assert [r.builder for r in await repo.unclaimed_requests()].count(b) == 1
    await repo.set_scheduler_enabled(n, False)
    e = uniq("e")
    await repo.set_scheduler_enabled(e, False)
    await repo.set_scheduler_enabled(e, True)

    other = await _open(backend.url)  # another process / after a restart
    try:
        records = await other.repo.load_scheduler_state([n, e])
    finally:
        await other.repo.aclose()
    assert (records[n].enabled, records[n].last_run) == (False, T0 + 60)
    assert (records[e].enabled, records[e].last_run) == (True, None)
