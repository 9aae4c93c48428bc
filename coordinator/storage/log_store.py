"""Storing the steps' logs: log chunks go through the writer's batch path (the hot path: no
commit of their own), and reading them back by range and channel."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence

import sqlalchemy as sa

from coordinator.domain.builds.lookup import step_number
from coordinator.domain.model import JournalEntry, LogChunk, LogInfo, Step
from coordinator.storage import codec, journal_store, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_builds = schema.builds
t_steps = schema.steps
t_logs = schema.logs
t_chunks = schema.logchunks
_INSERT_LOG = t_logs.insert()
_UPDATE_LOG = t_logs.update().where(t_logs.c.id == sa.bindparam("b_id"))


class SqlLogs:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_log(self, step: Step, name: str, type_: str, journal: Sequence[JournalEntry] = ()) -> LogInfo:
        def op(tx: Tx) -> LogInfo:
            log_id = tx.conn.execute(
                _INSERT_LOG, {"step_id": step.id, "name": name, "type": type_, "size": 0, "complete": False}
            ).inserted_primary_key[0]  # type: ignore[index]
            journal_store.record(tx.conn, journal)
            return LogInfo(id=int(log_id), step_id=step.id, name=name, type=type_)

        return await self.db.write(op)

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        flag, data = codec.compress(chunk.data)
        return self.db.writer.submit_chunk(
            {
                "log_id": log_id,
                "seq": seq,
                "channel": chunk.channel,
                "offset": chunk.offset,
                "channel_offset": chunk.channel_offset,
                "length": len(chunk.data),
                "compressed": flag,
                "data": data,
                "marks": codec.marks_to_text(chunk.marks),
            }
        )

    async def finish_log(self, log_id: int) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(_UPDATE_LOG, {"b_id": log_id, "complete": True})

        await self.db.write(op)

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]:
        """Chunks covering [offset, offset+limit) of the log, or of one channel when channel>0."""

        def q(c: sa.Connection) -> list[LogChunk]:
            if channel:
                pos = t_chunks.c.channel_offset
                where = [t_chunks.c.log_id == log_id, t_chunks.c.channel == channel]
            else:
                pos = t_chunks.c.offset
                where = [t_chunks.c.log_id == log_id]
            rows = c.execute(
                sa.select(t_chunks)
                .where(*where, pos + t_chunks.c.length > offset, pos < offset + limit)
                .order_by(t_chunks.c.seq)
            )
            return [
                LogChunk(
                    channel=r.channel,
                    data=codec.decompress(r.compressed, r.data),
                    offset=r.offset,
                    channel_offset=r.channel_offset,
                    marks=codec.marks_from_text(r.marks),
                )
                for r in rows
            ]

        return await self.db.read(q)

    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None:
        def q(c: sa.Connection) -> LogInfo | None:
            number_ = step_number(step)
            step_match = t_steps.c.name == step if number_ is None else t_steps.c.number == number_
            r = c.execute(
                sa.select(t_logs)
                .join(t_steps, t_steps.c.id == t_logs.c.step_id)
                .join(t_builds, t_builds.c.id == t_steps.c.build_id)
                .where(t_builds.c.builder == builder, t_builds.c.number == number, step_match,
                       t_logs.c.name == log_name)
                .order_by(t_steps.c.number, t_logs.c.id)  # two steps of one name: the first
            ).first()
            return None if r is None else codec.log_from_row(r)

        return await self.db.read(q)

    async def get_log_info(self, log_id: int) -> LogInfo | None:
        def q(c: sa.Connection) -> LogInfo | None:
            r = c.execute(sa.select(t_logs).where(t_logs.c.id == log_id)).first()
            return None if r is None else codec.log_from_row(r)

        return await self.db.read(q)
