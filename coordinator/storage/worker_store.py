"""Storing which workers are connected (and what they told us about themselves)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from coordinator.domain.events import Event
from coordinator.domain.model import WorkerRecord
from coordinator.storage import codec, schema
from coordinator.storage.store import Store
from coordinator.storage.writer import Tx

t_workers = schema.workers


class WorkerStore(Store):
    """The worker part of SqlRepository."""

    async def worker_connected(self, name: str, info: dict[str, str], at: float) -> None:
        def op(tx: Tx) -> None:
            c = tx.conn
            values = {"info_json": codec.dumps(info), "connected": True, "since": at}
            if c.execute(t_workers.update().where(t_workers.c.name == name).values(values)).rowcount == 0:
                c.execute(t_workers.insert().values(name=name, **values))
            tx.emit(Event(kind="worker.connected", at=at, worker=name, details={"info": info}))

        await self.writer.submit(op)

    async def worker_disconnected(self, name: str, at: float, reason: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(t_workers.update().where(t_workers.c.name == name).values(connected=False, since=at))
            tx.emit(Event(kind="worker.disconnected", at=at, worker=name, details={"reason": reason}))

        await self.writer.submit(op)

    async def list_workers(self) -> list[WorkerRecord]:
        def q(c: sa.Connection) -> list[WorkerRecord]:
            return [
                WorkerRecord(name=r.name, connected=r.connected, since=r.since, max_builds=0,
                             info=json.loads(r.info_json))
                for r in c.execute(sa.select(t_workers).order_by(t_workers.c.name))
            ]

        return await self._read(q)
