"""Storing which workers are connected (and what they told us about themselves)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import WorkerHold, WorkerRecord
from coordinator.storage import codec, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_workers = schema.workers
t_holds = schema.worker_holds


class SqlWorkers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def worker_connected(self, name: str, info: dict[str, str], at: float, events: Sequence[Event]) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            values = {"info_json": codec.dumps(info), "connected": True, "since": at}
            if c.execute(t_workers.update().where(t_workers.c.name == name).values(values)).rowcount == 0:
                c.execute(t_workers.insert().values(name=name, **values))
            tx.emit_all(events)

        await self.db.write(op)

    async def worker_disconnected(self, name: str, at: float, events: Sequence[Event]) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(t_workers.update().where(t_workers.c.name == name).values(connected=False, since=at))
            tx.emit_all(events)

        await self.db.write(op)

    async def list_workers(self) -> list[WorkerRecord]:
        def q(c: sa.Connection) -> list[WorkerRecord]:
            return [
                WorkerRecord(name=r.name, connected=r.connected, since=r.since, max_builds=0,
                             info=json.loads(r.info_json))
                for r in c.execute(sa.select(t_workers).order_by(t_workers.c.name))
            ]

        return await self.db.read(q)

    async def reset_connections(self) -> None:
        """At start-up: no worker is connected to a coordinator that was not running."""
        await self.db.write(lambda tx: tx.conn.execute(t_workers.update().values(connected=False)))

    async def load_worker_holds(self) -> dict[str, WorkerHold]:
        def q(c: sa.Connection) -> dict[str, WorkerHold]:
            return {r.name: WorkerHold(r.state, r.reason, r.at) for r in c.execute(sa.select(t_holds))}

        return await self.db.read(q)

    async def set_worker_hold(self, name: str, hold: WorkerHold | None, events: Sequence[Event]) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            c.execute(t_holds.delete().where(t_holds.c.name == name))
            if hold is not None:
                c.execute(t_holds.insert().values(name=name, state=hold.state, reason=hold.reason, at=hold.at))
            tx.emit_all(events)

        await self.db.write(op)
