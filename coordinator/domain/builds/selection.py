"""Which request starts next and on which worker: the workers that qualify for a builder, and
Buildbot's hooks that choose among them (nextBuild, nextWorker, canStartBuild), each guarded so
that a hook that raises or answers nonsense never stops dispatching. Used by the dispatcher."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from coordinator.domain.builds.builders import Builder
from coordinator.domain.model import BuildRequest
from coordinator.domain.workers.sessions import WorkerSession

log = logging.getLogger(__name__)


def qualified_workers(
    builder: Builder, sessions: Mapping[str, WorkerSession]
) -> list[WorkerSession]:
    """Connected workers of the builder's list that advertised all its worker_labels."""
    wanted = set(builder.worker_labels)
    out = []
    for name in builder.workers:
        s = sessions.get(name)
        if s is not None and not s.closed and wanted <= worker_labels(s):
            out.append(s)
    return out


def worker_labels(session: WorkerSession) -> set[str]:
    """The labels a worker advertised in its Hello (kept comma-joined in its info)."""
    return {label for label in session.info.get("labels", "").split(",") if label}


async def next_build(builder: Builder, requests: list[BuildRequest]) -> BuildRequest | None:
    """What the builder's nextBuild picks among its pending `requests` (in start order); the
    first one when the hook fails."""
    assert builder.nextBuild is not None
    try:
        chosen = await maybe_await(builder.nextBuild(builder, requests))
    except Exception:
        log.exception("nextBuild of builder %s raised; taking the first request", builder.name)
        return requests[0]
    if chosen is not None and not any(chosen is r for r in requests):
        log.error("nextBuild of builder %s returned %r, not one of the requests", builder.name, chosen)
        return requests[0]
    return chosen  # type: ignore[no-any-return]


async def choose_worker(
    builder: Builder, free: list[WorkerSession], req: BuildRequest
) -> WorkerSession | None:
    """Buildbot's loop: nextWorker picks one (default: the one with most free slots),
    canStartBuild may refuse it, then the next is tried."""
    candidates = list(free)
    while candidates:
        if builder.nextWorker is None:
            session: WorkerSession | None = max(candidates, key=lambda s: s.free_slots)
        else:
            try:
                session = await maybe_await(builder.nextWorker(builder, list(candidates), req))
            except Exception:
                log.exception("nextWorker of builder %s raised; starting nothing now", builder.name)
                return None
            if session is None or session not in candidates:
                return None
        assert session is not None
        candidates.remove(session)
        if builder.canStartBuild is None:
            return session
        try:
            if await maybe_await(builder.canStartBuild(builder, session, req)):
                return session
        except Exception:
            log.exception("canStartBuild of builder %s raised; treating it as a refusal", builder.name)
    return None


async def maybe_await(value: Any) -> Any:
    """A hook's answer, whether it returned it or an awaitable of it."""
    return await value if inspect.isawaitable(value) else value
