"""The audit log in SQL (the AuditStore port of coordinator/domain/auth/audit.py)."""

from __future__ import annotations

import sqlalchemy as sa

from coordinator.domain.auth.audit import MAX_TEXT, AuditEntry
from coordinator.storage import schema
from coordinator.storage.db import Database

t = schema.audit_log


class SqlAudit:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_audit(self, entry: AuditEntry) -> None:
        row = {
            "at": entry.at, "user": entry.user[:256], "via": entry.via[:32], "source": entry.source[:256],
            "action": entry.action[:32], "target": entry.target[:MAX_TEXT], "outcome": entry.outcome[:64],
            "detail": entry.detail[:MAX_TEXT],
        }
        await self.db.write(lambda tx: tx.conn.execute(t.insert().values(**row)))

    async def list_audit(self, limit: int, before_id: int = 0, user: str | None = None) -> list[AuditEntry]:
        def q(c: sa.Connection) -> list[AuditEntry]:
            query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
            if before_id > 0:
                query = query.where(t.c.id < before_id)
            if user is not None:
                query = query.where(t.c.user == user)
            return [AuditEntry(at=r.at, user=r.user, via=r.via, source=r.source, action=r.action, target=r.target,
                               outcome=r.outcome, detail=r.detail, id=r.id) for r in c.execute(query)]

        return await self.db.read(q)
