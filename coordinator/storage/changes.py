"""Storing changes: submitted ones (at most once per idempotency key) and those a change source
found, together with what that source has seen, in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace

import sqlalchemy as sa

from coordinator.domain.errors import FailedPrecondition
from coordinator.domain.events import Event
from coordinator.domain.model import Change, Classified
from coordinator.storage import codec, scheduler_store, schema
from coordinator.storage.db import Database
from coordinator.storage.writer import Tx

t_changes = schema.changes
t_state = schema.change_source_state
_INSERT_CHANGE = schema.changes.insert()  # executed with parameters: compiled once
_IDS_OF_KEY = sa.select(schema.idempotency_keys.c.change_ids_json).where(
    schema.idempotency_keys.c.key == sa.bindparam("b_key")
)


def insert_changes(
    tx: Tx, changes: Sequence[Change], idempotency_key: str, at: float,
    events: Callable[[list[Change]], list[Event]],
) -> tuple[list[int], bool]:
    """Store changes and their events in the caller's transaction (at most once per
    idempotency key); returns their ids and whether the key had been seen."""
    c = tx.conn
    if idempotency_key:
        seen = c.execute(_IDS_OF_KEY, {"b_key": idempotency_key}).scalar()
        if seen is not None:
            return json.loads(seen), True
    stored = []
    for ch in changes:
        ch_id = c.execute(_INSERT_CHANGE, codec.change_values(ch)).inserted_primary_key[0]  # type: ignore[index]
        stored.append(replace(ch, id=int(ch_id)))
    for event in events(stored):
        tx.emit(event)
    ids = [ch.id for ch in stored]
    if idempotency_key:
        c.execute(
            schema.idempotency_keys.insert().values(
                key=idempotency_key, change_ids_json=codec.dumps(ids), created_at=at
            )
        )
    return ids, False


class SqlChanges:
    """Changes, and what each change source has seen."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float,
        classified: Sequence[Classified], events: Callable[[list[Change]], list[Event]],
    ) -> tuple[list[int], bool]:
        def op(tx: Tx) -> tuple[list[int], bool]:
            ids, duplicate = insert_changes(tx, changes, idempotency_key, at, events)
            if not duplicate:
                scheduler_store.insert_classified(tx.conn, ids, classified, at)
            return ids, duplicate

        try:
            return await self.db.write(op)
        except sa.exc.IntegrityError:
            if not idempotency_key:
                raise
            # Another coordinator stored the same key just now: its changes are these.
            stored = await self.db.read(lambda c: c.execute(_IDS_OF_KEY, {"b_key": idempotency_key}).scalar())
            if stored is None:
                raise
            return json.loads(stored), True

    async def get_change(self, change_id: int) -> Change | None:
        def q(c: sa.Connection) -> Change | None:
            row = c.execute(sa.select(t_changes).where(t_changes.c.id == change_id)).first()
            return None if row is None else codec.change_from_row(row)

        return await self.db.read(q)

    async def list_changes(self, limit: int) -> list[Change]:
        def q(c: sa.Connection) -> list[Change]:
            rows = c.execute(sa.select(t_changes).order_by(t_changes.c.id.desc()).limit(limit))
            return [codec.change_from_row(r) for r in rows]

        return await self.db.read(q)


    async def get_change_source_state(self, name: str) -> dict[str, str] | None:
        """The branch heads `name` saw last; None if it never polled."""
        raw = await self.db.read(
            lambda c: c.execute(sa.select(t_state.c.state_json).where(t_state.c.name == name)).scalar()
        )
        return None if raw is None else dict(json.loads(raw))

    async def add_polled_changes(
        self, name: str, changes: Sequence[Change], state: dict[str, str], at: float,
        previous: dict[str, str] | None, classified: Sequence[Classified],
        events: Callable[[list[Change]], list[Event]],
    ) -> list[int]:
        """Store the changes and `name`'s new state atomically: both or neither, and only if the
        stored state is still `previous` (else FailedPrecondition: another coordinator sharing
        the database polled first, and these changes are already stored)."""

        def op(tx: Tx) -> list[int]:
            values = {"state_json": _state_json(state), "updated_at": at}
            if previous is None:
                tx.conn.execute(t_state.insert().values(name=name, **values))
            else:
                swapped = tx.conn.execute(
                    t_state.update()
                    .where(t_state.c.name == name, t_state.c.state_json == _state_json(previous))
                    .values(values)
                ).rowcount
                if swapped != 1:
                    raise FailedPrecondition(f"{name}: its state changed meanwhile (polled elsewhere)")
            ids = insert_changes(tx, changes, "", at, events)[0] if changes else []
            scheduler_store.insert_classified(tx.conn, ids, classified, at)
            return ids

        try:
            return list(await self.db.write(op))
        except sa.exc.IntegrityError:
            if previous is not None:
                raise
            # Two first polls at once (the state row exists already): the other one won.
            raise FailedPrecondition(f"{name}: its state changed meanwhile (polled elsewhere)") from None


def _state_json(state: dict[str, str]) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))
