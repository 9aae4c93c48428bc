"""Retention on the in-memory storage (the same port as storage/retention_store.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordinator.domain.model import DELETED_LOG
from coordinator.domain.ports import Expiry
from coordinator.domain.results import Result

if TYPE_CHECKING:
    from coordinator.storage.memory import _Db, _Tx

FAILING = (Result.FAILURE, Result.EXCEPTION)


class MemoryRetention:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.data = db.data

    def _builds(self, expiry: Expiry) -> list[int]:
        return sorted(
            b.id
            for b in self.data.builds.values()
            if b.builder == expiry.builder
            and b.finished_at is not None
            and b.finished_at < expiry.before
            and (b.result in FAILING) == expiry.failed
        )

    def _logs(self, builds: list[int]) -> list[int]:
        ids = set(builds)
        steps = {s.id for s in self.data.steps.values() if s.build_id in ids}
        return sorted(i for i, log in self.data.logs.items() if log.step_id in steps and log.type != DELETED_LOG)

    def _artifacts(self, builds: list[int]) -> list[int]:
        ids = set(builds)
        return sorted(i for i, a in self.data.artifacts.items() if a.build_id in ids)

    async def count_expired(self, expiry: Expiry) -> int:
        builds = self._builds(expiry)
        if expiry.kind == "builds":
            return len(builds)
        return len(self._logs(builds) if expiry.kind == "logs" else self._artifacts(builds))

    async def expire(self, expiry: Expiry, limit: int) -> tuple[int, list[tuple[int, str]]]:
        def op(tx: _Tx) -> tuple[int, list[tuple[int, str]]]:
            builds = self._builds(expiry)
            if expiry.kind == "logs":
                logs = self._logs(builds)[:limit]
                for log_id in logs:
                    if log_id in self.data.logchunks:
                        tx.delete(self.data.logchunks, log_id)
                    tx.update(self.data.logs[log_id], type=DELETED_LOG)
                return len(logs), []
            if expiry.kind == "artifacts":
                arts = self._artifacts(builds)[:limit]
                files = [
                    (self.data.builds[self.data.artifacts[i].build_id].number, self.data.artifacts[i].name)
                    for i in arts
                ]
                for i in arts:
                    tx.delete(self.data.artifacts, i)
                return len(arts), files
            chosen = builds[:limit]
            files = [
                (self.data.builds[self.data.artifacts[i].build_id].number, self.data.artifacts[i].name)
                for i in self._artifacts(chosen)
            ]
            ids = set(chosen)
            steps = [i for i, s in self.data.steps.items() if s.build_id in ids]
            for log_id in [i for i, log in self.data.logs.items() if log.step_id in set(steps)]:
                if log_id in self.data.logchunks:
                    tx.delete(self.data.logchunks, log_id)
                tx.delete(self.data.logs, log_id)
            for i in self._artifacts(chosen):
                tx.delete(self.data.artifacts, i)
            for i in [i for i, (build_id, _, _) in self.data.test_cases.items() if build_id in ids]:
                tx.delete(self.data.test_cases, i)
            for key in [k for k in self.data.step_journal if k[0] in ids]:
                tx.delete(self.data.step_journal, key)
            for i in steps:
                tx.delete(self.data.steps, i)
            for i in chosen:
                build = self.data.builds[i]
                tx.delete(self.data.build_ids, (build.builder, build.number))
                tx.delete(self.data.builds, i)
            return len(chosen), files

        return await self.db.write(op)

    # -- events (a prefix by id, as on SQL)
    def _expired_events(self, before: float, keep_from: int) -> int:
        """How many of the oldest events may go: older than `before`, below `keep_from`."""
        count = 0
        for event in self.data.events:
            if event.id >= keep_from or event.at >= before:
                break
            count += 1
        return count

    async def event_bounds(self) -> tuple[int, int | None]:
        cursors = self.data.notifier_state.values()
        return self.data.events_pruned + len(self.data.events), min(cursors) if cursors else None

    async def count_expired_events(self, before: float, keep_from: int) -> int:
        return self._expired_events(before, keep_from)

    async def expire_events(self, before: float, keep_from: int, limit: int) -> int:
        def op(_tx: _Tx) -> int:
            count = min(self._expired_events(before, keep_from), limit)
            del self.data.events[:count]  # nothing after this can fail: no undo needed
            self.data.events_pruned += count
            return count

        return await self.db.write(op)

    async def reclaim_space(self) -> str:
        return "memory: nothing to reclaim"
