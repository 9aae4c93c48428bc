"""Workers' holds (pause, drain) on each storage (memory, SQLite, PostgreSQL): stored with their
event in one write, replaced, removed, and found again by a reopened database."""

from __future__ import annotations

from coordinator.domain.events import worker_state
from coordinator.domain.model import WorkerHold
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.test_storage_contract import T0, Backend, _open, uniq

backend = contract.backend


async def test_holds_are_stored_replaced_removed_and_reloaded(backend: Backend) -> None:
    url = await backend.fresh_url()
    store = await _open(url)
    db = store.db
    w1, w2 = uniq("w"), uniq("w")
    try:
        await db.workers.set_worker_hold(w1, WorkerHold("paused", "disk ✓", T0), [worker_state(w1, "paused", "", T0)])
        await db.workers.set_worker_hold(w2, WorkerHold("paused", "", T0), [])
        await db.workers.set_worker_hold(w2, WorkerHold("draining", "retire", T0 + 1), [])
        assert [e.kind for e in store.published] == ["worker.state"]
    finally:
        await db.aclose()
    store = await _open(url)
    db = store.db
    try:
        assert await db.workers.load_worker_holds() == {
            w1: WorkerHold("paused", "disk ✓", T0),
            w2: WorkerHold("draining", "retire", T0 + 1),
        }
        await db.workers.set_worker_hold(w1, None, [])
        await db.workers.set_worker_hold(uniq("never-held"), None, [])  # removing nothing is fine
        assert await db.workers.load_worker_holds() == {w2: WorkerHold("draining", "retire", T0 + 1)}
    finally:
        await db.aclose()
