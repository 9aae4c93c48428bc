"""Storing the running steps' command journals (one row per action a step finished)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from coordinator.domain.model import JournalEntry
from coordinator.storage import schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_journal = schema.step_journal


class SqlJournal:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_journal(self, entries: Sequence[JournalEntry]) -> None:
        def op(tx: Tx) -> None:
            record(tx.conn, entries)

        await self.db.write(op)

    async def step_journal(self, build_id: int, step_number: int) -> list[JournalEntry]:
        def q(c: sa.Connection) -> list[JournalEntry]:
            rows = c.execute(
                sa.select(t_journal)
                .where(t_journal.c.build_id == build_id, t_journal.c.step_number == step_number)
                .order_by(t_journal.c.idx)
            )
            return [
                JournalEntry(
                    r.build_id, r.step_number, r.idx, r.kind, r.fingerprint, r.command_id, r.rc, r.reason,
                    r.log_name, r.first_chunk, r.end_chunk, r.data_json,
                )
                for r in rows
            ]

        return await self.db.read(q)


def record(conn: sa.Connection, entries: Sequence[JournalEntry]) -> None:
    """In the caller's transaction (a trigger's rides its buildset's, a command's a new log's)."""
    if entries:
        conn.execute(t_journal.insert(), [
            {"build_id": e.build_id, "step_number": e.step_number, "idx": e.index, "kind": e.kind,
             "fingerprint": e.fingerprint, "command_id": e.command_id, "rc": e.rc, "reason": e.reason,
             "log_name": e.log_name, "first_chunk": e.first_chunk, "end_chunk": e.end_chunk, "data_json": e.data}
            for e in entries
        ])


def delete_for_builds(conn: sa.Connection, build_ids: Sequence[object]) -> None:
    conn.execute(t_journal.delete().where(t_journal.c.build_id.in_(build_ids)))
