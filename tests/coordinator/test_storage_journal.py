"""The step command journal on each storage (memory, SQLite, PostgreSQL): entries stored in one
write, read back per step in order by a reopened database (a restarted coordinator), added to
after a replay; an entry riding a new log's commit; a Trigger step's entry stored in its
buildset's transaction (with the buildset's id and requests), or not at all when that
transaction is refused; deleted with its build by retention."""

from __future__ import annotations

import json

import pytest

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.model import JournalEntry, SchedulerCommit
from coordinator.domain.ports import Expiry
from coordinator.domain.results import Result
from tests.coordinator import test_storage_contract as contract
from tests.coordinator.test_storage_contract import (
    T0,
    Backend,
    _open,
    add_buildset,
    bookkeeping,
    new_buildset,
    started_build,
    uniq,
)

backend = contract.backend


async def test_entries_are_stored_reloaded_by_step_in_order_and_replaced(backend: Backend) -> None:
    url = await backend.fresh_url()
    store = await _open(url)
    builder = uniq("b")
    try:
        build = await started_build(store.db, builder)
        cmd = JournalEntry(build.id, 2, 0, "command", "f0", f"{build.id}-2-5", 1, "", "stdio", 0, 7)
        stat = JournalEntry(build.id, 2, 1, "file", "f1", f"{build.id}-2-6", data='{"exists": true}')
        other_step = JournalEntry(build.id, 3, 0, "command", "f2", f"{build.id}-3-7", reason="timeout")
        await store.db.journal.record_journal([stat, other_step])
        await store.db.journal.record_journal([cmd])
    finally:
        await store.db.aclose()
    store = await _open(url)  # a restarted coordinator
    try:
        assert await store.db.journal.step_journal(build.id, 2) == [cmd, stat]
        assert await store.db.journal.step_journal(build.id, 3) == [other_step]
        assert await store.db.journal.step_journal(build.id, 4) == []
        later = JournalEntry(build.id, 2, 2, "trigger", "f3", data='{"buildset": 4, "requests": {}}')
        await store.db.journal.record_journal([later])  # after a replay: the next index
        assert await store.db.journal.step_journal(build.id, 2) == [cmd, stat, later]
    finally:
        await store.db.aclose()


async def test_a_trigger_entry_rides_its_buildset_commit(backend: Backend) -> None:
    store = await _open(await backend.fresh_url())
    db = store.db
    try:
        build = await started_build(db, uniq("parent"))
        entry = JournalEntry(build.id, 1, 0, "trigger", "fp")
        child = uniq("child")
        bs_id, requests = await add_buildset(db, new_buildset([child]), T0, SchedulerCommit("tests", journal=entry))
        (stored,) = await db.journal.step_journal(build.id, 1)
        assert stored == entry.with_buildset(bs_id, requests)
        assert json.loads(stored.data) == {"buildset": bs_id, "requests": {child: requests[child]}}

        # A refused buildset transaction stores no entry either.
        refused = JournalEntry(build.id, 1, 1, "trigger", "fp2")
        commit = SchedulerCommit("tests", change_ids=[10**9], journal=refused)
        with pytest.raises(AlreadyScheduled):
            await add_buildset(db, new_buildset([child]), T0, commit)
        assert [e.index for e in await db.journal.step_journal(build.id, 1)] == [0]
    finally:
        await db.aclose()


async def test_an_entry_rides_a_new_logs_commit(backend: Backend) -> None:
    store = await _open(await backend.fresh_url())
    db = store.db
    try:
        build = await started_build(db, uniq("seq"))
        step = (await db.builds.add_steps(build, ["seq"]))[0]
        entry = JournalEntry(build.id, step.number, 0, "command", "fp", f"{build.id}-0-1", 0, "", "stdio", 0, 3)
        info = await db.logs.add_log(step, "stdio2", "s", [entry])
        assert info.name == "stdio2"
        assert await db.journal.step_journal(build.id, step.number) == [entry]
    finally:
        await db.aclose()


async def test_retention_deletes_a_builds_journal_with_it(backend: Backend) -> None:
    store = await _open(await backend.fresh_url())
    db = store.db
    builder = uniq("old")
    try:
        build = await started_build(db, builder)
        await db.journal.record_journal([JournalEntry(build.id, 0, 0, "command", "f")])
        await bookkeeping.finish_build(db.book, build, Result.SUCCESS, "ok", T0 + 2)
        deleted, _ = await db.retention.expire(Expiry(builder, "builds", T0 + 10, False), 10)
        assert deleted == 1
        assert await db.journal.step_journal(build.id, 0) == []
    finally:
        await db.aclose()
