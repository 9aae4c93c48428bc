"""Change intake: submitted changes (API, webhooks) and polled ones (GitPoller) are checked,
classified for the schedulers, stored with that classification in one transaction, and only then
handed to the schedulers that take them."""

from __future__ import annotations

from collections.abc import Callable

from coordinator.domain import events
from coordinator.domain.changes.validation import (
    MAX_CHANGES_PER_REQUEST,
    check_changes,
    fit_polled_change,
)
from coordinator.domain.model import Change, Classified
from coordinator.domain.ports import ChangeIntakeStore, Clock
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.schedulers import ChangeScheduler


class ChangeIntake:
    """Also the `PolledChangeSink` of the polling change sources (changes/sources.py)."""

    def __init__(self, changes: ChangeIntakeStore, clock: Clock, schedulers: SchedulerControl) -> None:
        self.store = changes
        self.clock = clock
        self.schedulers = schedulers

    async def submit_changes(self, changes: list[Change], idempotency_key: str = "") -> tuple[list[int], bool]:
        check_changes(changes, idempotency_key)
        now = self.clock.now()
        for c in changes:
            if not c.when:
                c.when = now
        classified = self._classify(changes)
        ids, duplicate = await self.store.add_changes(changes, idempotency_key, now, classified, _announce(now))
        if not duplicate:
            self._take(changes, ids, classified, now)
        return ids, duplicate

    async def change_source_state(self, name: str) -> dict[str, str] | None:
        return await self.store.get_change_source_state(name)

    async def submit_polled_changes(
        self, name: str, changes: list[Change], state: dict[str, str], previous: dict[str, str] | None
    ) -> None:
        """A poller's changes and its new branch heads, stored together (see sources.py)."""
        for c in changes:
            fit_polled_change(c)
        for i in range(0, len(changes), MAX_CHANGES_PER_REQUEST):
            check_changes(changes[i : i + MAX_CHANGES_PER_REQUEST], "")
        now = self.clock.now()
        classified = self._classify(changes)
        ids = await self.store.add_polled_changes(name, changes, state, now, previous, classified, _announce(now))
        self._take(changes, ids, classified, now)

    def _classify(self, changes: list[Change]) -> list[Classified]:
        """Which schedulers take each change: decided before storing, so it commits with the
        changes (no extra commit per change); the schedulers see them once stored (`_take`)."""
        return [
            Classified(i, s.name, verdict[0], verdict[1])
            for i, c in enumerate(changes)
            for s in self.schedulers.schedulers
            if isinstance(s, ChangeScheduler) and (verdict := s.classify(c)) is not None
        ]

    def _take(self, changes: list[Change], ids: list[int], classified: list[Classified], now: float) -> None:
        for c, cid in zip(changes, ids, strict=True):
            c.id = cid
        for k in classified:
            sched = self.schedulers.current(k.scheduler)
            if isinstance(sched, ChangeScheduler) and sched.enabled:
                sched.add_classified(changes[k.index], k.key, k.important, now)


def _announce(at: float) -> Callable[[list[Change]], list[events.Event]]:
    return lambda stored: [events.change_added(c, at) for c in stored]
