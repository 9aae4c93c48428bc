"""Storage of notifications: migration 2 upgrades a version-1 database (SQLite), keys are unique,
claims are exclusive, and list_notifications filters by state (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from coordinator.domain.events import EventBus
from coordinator.storage import schema
from coordinator.storage.sql import database_url, open_storage
from tests.notifiers.conftest import Store


async def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    url = database_url(None, tmp_path)
    engine = create_async_engine(url)
    v1 = [t for t in schema.metadata.sorted_tables
          if t not in (schema.schema_version, schema.notifications, schema.notifier_state,
                       schema.scheduler_changes, schema.scheduler_state,
                       schema.buildrequest_collapses, schema.change_source_state, schema.artifacts)]
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: schema.metadata.create_all(c, tables=[schema.schema_version, *v1]))
        await conn.execute(schema.schema_version.insert().values(version=1))
    await engine.dispose()

    db = await open_storage(url, EventBus().publish)
    try:
        async with db.engine.connect() as conn:
            versions = [r[0] for r in await conn.execute(sa.select(schema.schema_version.c.version))]
        assert versions == [schema.LATEST]
        assert await db.outbox.add_notification("n", "mail", "k", {"a": 1}, 1.0)
        assert [n.key for n in await db.outbox.list_notifications(10)] == ["k"]
    finally:
        await db.aclose()


async def test_keys_are_unique_and_claims_exclusive(store: Store) -> None:
    outbox = store.db.outbox
    assert await outbox.add_notification("n", "http", "n:b:1:build.finished", {"body": "{}"}, 10.0)
    assert not await outbox.add_notification("n", "http", "n:b:1:build.finished", {"body": "x"}, 11.0)
    assert await outbox.add_notification("n", "http", "n:b:2:build.finished", {"body": "{}"}, 20.0)

    assert await outbox.claim_due_notifications(5.0, 60.0, 10) == []  # nothing due yet
    first = await outbox.claim_due_notifications(15.0, 60.0, 10)
    assert [(n.key, n.attempts, n.payload) for n in first] == [("n:b:1:build.finished", 1, {"body": "{}"})]
    assert await outbox.claim_due_notifications(30.0, 60.0, 10) != first  # leased: only the other one
    await outbox.notification_failed(first[0].id, "boom", 40.0)
    (again,) = await outbox.claim_due_notifications(41.0, 60.0, 10)
    assert (again.id, again.attempts, again.last_error) == (first[0].id, 2, "boom")
    await outbox.notification_sent(again.id, 42.0)
    await outbox.notification_failed(again.id + 1, "gave up", None)
    assert [n.state for n in await outbox.list_notifications(10)] == ["failed", "sent"]
    assert [n.key for n in await outbox.list_notifications(10, "sent")] == ["n:b:1:build.finished"]
    assert await outbox.list_notifications(10, "pending") == []

    assert await outbox.get_notifier_cursor("c") is None
    await outbox.set_notifier_cursor("c", 5)
    await outbox.set_notifier_cursor("c", 7)
    assert await outbox.get_notifier_cursor("c") == 7
