"""Storing notifications: the durable outbox notifiers deliver from (claimed with a lease,
retried with backoff), and the notifiers' event cursors."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from coordinator.domain.ports import Notification
from coordinator.storage import codec, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx


class SqlOutbox:
    """The notifications' outbox and the notifiers' event cursors."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_notifier_cursor(self, name: str) -> int | None:
        t = schema.notifier_state
        return await self.db.read(
            lambda c: c.execute(sa.select(t.c.last_event_id).where(t.c.name == name)).scalar()
        )

    async def set_notifier_cursor(self, name: str, event_id: int) -> None:
        t = schema.notifier_state

        def op(tx: Tx) -> None:
            if tx.conn.execute(t.update().where(t.c.name == name).values(last_event_id=event_id)).rowcount == 0:
                tx.conn.execute(t.insert().values(name=name, last_event_id=event_id))

        await self.db.write(op)

    async def add_notification(
        self, notifier: str, kind: str, key: str, payload: dict[str, Any], at: float
    ) -> bool:
        """Queue a pending notification; False (and nothing stored) when `key` already exists."""
        t = schema.notifications

        def op(tx: Tx) -> bool:
            if tx.conn.execute(sa.select(t.c.id).where(t.c.key == key)).first() is not None:
                return False
            tx.conn.execute(
                t.insert().values(notifier=notifier, kind=kind, key=key, payload_json=codec.dumps(payload),
                                  state="pending", attempts=0, next_attempt_at=at, last_error="",
                                  created_at=at)
            )
            return True

        try:
            return await self.db.write(op)
        except sa.exc.IntegrityError:  # another coordinator queued the same key just now
            return False

    async def claim_due_notifications(self, now: float, lease: float, limit: int) -> list[Notification]:
        """Pending notifications due by `now`, each claimed for `lease` seconds (their
        next_attempt_at moves on with one conditional UPDATE, so two coordinators never send the
        same one at once, and one left by a crash is retried once the lease ends)."""
        t = schema.notifications

        def op(tx: Tx) -> list[Notification]:
            c = tx.conn
            rows = c.execute(
                sa.select(t).where(t.c.state == "pending", t.c.next_attempt_at <= now)
                .order_by(t.c.next_attempt_at, t.c.id).limit(limit)
            ).all()
            out = []
            for r in rows:
                res = c.execute(
                    t.update().where(t.c.id == r.id, t.c.state == "pending",
                                     t.c.next_attempt_at == r.next_attempt_at)
                    .values(next_attempt_at=now + lease, attempts=t.c.attempts + 1)
                )
                if res.rowcount == 1:
                    n = _notification_from_row(r)
                    n.attempts += 1
                    n.next_attempt_at = now + lease
                    out.append(n)
            return out

        return await self.db.write(op)

    async def notification_sent(self, notification_id: int, at: float) -> None:
        t = schema.notifications

        def op(tx: Tx) -> None:
            tx.conn.execute(t.update().where(t.c.id == notification_id)
                            .values(state="sent", sent_at=at, last_error=""))

        await self.db.write(op)

    async def notification_failed(
        self, notification_id: int, error: str, next_attempt_at: float | None
    ) -> None:
        """Record a failed attempt: retry at `next_attempt_at`, or give up (state failed) on None."""
        t = schema.notifications
        values: dict[str, Any] = {"last_error": error[:4000]}
        if next_attempt_at is None:
            values["state"] = "failed"
        else:
            values["next_attempt_at"] = next_attempt_at

        def op(tx: Tx) -> None:
            tx.conn.execute(t.update().where(t.c.id == notification_id).values(values))

        await self.db.write(op)

    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]:
        """Newest first; `state` ("pending", "sent", "failed") filters when given."""
        t = schema.notifications

        def q(c: sa.Connection) -> list[Notification]:
            stmt = sa.select(t).order_by(t.c.id.desc()).limit(limit)
            if state:
                stmt = stmt.where(t.c.state == state)
            return [_notification_from_row(r) for r in c.execute(stmt)]

        return await self.db.read(q)


def _notification_from_row(r: Any) -> Notification:
    return Notification(
        id=r.id, notifier=r.notifier, kind=r.kind, key=r.key, payload=json.loads(r.payload_json),
        state=r.state, attempts=r.attempts, next_attempt_at=r.next_attempt_at,
        last_error=r.last_error, created_at=r.created_at, sent_at=r.sent_at,
    )

