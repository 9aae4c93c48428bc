"""The audit log: who did (or tried) which control action, on what, when, from where, with
what outcome. Reads are not audited (the log would drown in them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from coordinator.domain.auth import actions

AUDITED = frozenset({
    actions.FORCE, actions.TRY, actions.STOP, actions.REBUILD, actions.CANCEL, actions.SCHEDULER, actions.RECONFIG,
    actions.WORKER_ADMIN, actions.TOKEN_ADMIN,
})
MAX_TEXT = 500


@dataclass(frozen=True)
class AuditEntry:
    at: float
    user: str  # "" : anonymous (a coordinator without auth, on loopback)
    via: str  # how the user was identified: token, certificate, proxy, session
    source: str  # the client's address
    action: str
    target: str  # what the call named: "builder=app number=3", "token id=4"...
    outcome: str  # "ok", or the refusal/error code ("PERMISSION_DENIED", "NOT_FOUND"...)
    detail: str = ""  # the refusal's or error's message
    id: int = 0  # assigned when stored


class AuditStore(Protocol):
    async def add_audit(self, entry: AuditEntry) -> None: ...

    async def list_audit(self, limit: int, before_id: int = 0, user: str | None = None) -> list[AuditEntry]:
        """Newest first; `before_id` > 0 pages back."""
        ...
