"""Turns one webhook delivery into stored changes, whatever carries it over HTTP.

The HTTP server hands over (dialect, headers, body) and sends back the (status, document) this
returns: verify -> parse -> store through ChangeIntake.submit_changes, the same path as
the gRPC SubmitChanges, so every change of a delivery is committed atomically (and announced to
the schedulers) before the 200. The service's delivery id makes the idempotency key, so a
redelivery stores nothing new and answers with the ids stored the first time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from coordinator.domain.errors import GantryError
from coordinator.domain.scheduling.intake import ChangeIntake
from coordinator.logsafe import clip
from coordinator.web.hooks import Dialect, HookError

log = logging.getLogger(__name__)
MAX_KEY = 128  # what SubmitChanges accepts as an idempotency key


class WebhookReceiver:
    def __init__(self, intake: ChangeIntake, dialects: Mapping[str, Dialect]) -> None:
        self.intake = intake
        self.dialects = dict(dialects)

    async def receive(self, name: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        dialect = self.dialects.get(name)
        if dialect is None:
            known = ", ".join(sorted(self.dialects)) or "none"
            return 404, {"error": f"no change hook dialect {name!r} is configured (configured: {known})"}
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            dialect.verify(headers, body)
            parsed = dialect.parse(headers, body)
        except HookError as exc:
            log.warning("%s webhook refused (%d): %s", name, exc.status, clip(exc.reason))
            return exc.status, {"error": exc.reason}
        if not parsed.changes:
            log.info("%s webhook: nothing to build (%s)", name, clip(parsed.ignored))
            return 200, {"change_ids": [], "duplicate": False, "ignored": parsed.ignored}
        key = idempotency_key(name, dialect.delivery_id(headers))
        try:
            ids, duplicate = await self.intake.submit_changes(parsed.changes, key)
        except GantryError as exc:  # e.g. a field longer than a change may hold
            log.warning("%s webhook refused (400): %s", name, clip(exc))
            return 400, {"error": str(exc)}
        log.info("%s webhook: %s change(s) %s", name, "already stored" if duplicate else "stored", ids)
        return 200, {"change_ids": ids, "duplicate": duplicate}


def idempotency_key(dialect: str, delivery: str) -> str:
    """'' without a delivery id; else a key unique to the dialect and delivery, at most MAX_KEY."""
    if not delivery:
        return ""
    key = f"webhook:{dialect}:{delivery}"
    if len(key) > MAX_KEY:
        key = f"webhook:{dialect}:sha256:{hashlib.sha256(delivery.encode()).hexdigest()}"
    return key
