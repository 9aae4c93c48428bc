"""The interfaces through which the domain reaches time and storage (implemented elsewhere)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Build,
    BuildRequest,
    Buildset,
    Change,
    LogChunk,
    LogInfo,
    NewBuildset,
    Property,
    Step,
    WorkerRecord,
)
from coordinator.domain.results import Result


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class Repository(Protocol):
    """Everything the coordinator stores. Every write commits before it returns, records the
    events describing it in the same transaction, and storage then publishes them in id order.
    """

    # changes
    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float
    ) -> tuple[list[int], bool]: ...

    async def get_change(self, change_id: int) -> Change | None: ...

    async def list_changes(self, limit: int) -> list[Change]: ...

    # buildsets and requests
    async def add_buildset(self, buildset: NewBuildset, at: float) -> tuple[int, dict[str, int]]: ...

    async def get_buildset(self, buildset_id: int) -> Buildset | None: ...

    async def unclaimed_requests(self) -> list[BuildRequest]: ...

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool: ...

    async def release_orphaned_claims(self, coordinator_id: str, at: float) -> int: ...

    # builds, steps, logs
    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[Property], at: float
    ) -> Build: ...

    async def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, requeue: bool
    ) -> None: ...

    async def add_steps(self, build: Build, names: Sequence[str]) -> list[Step]: ...

    async def start_step(self, build: Build, step: Step, at: float) -> None: ...

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float
    ) -> None: ...

    async def set_build_properties(self, build: Build, properties: list[Property]) -> None: ...

    async def set_step_urls(self, step: Step) -> None:
        """Store `step.urls` while the step runs (finish_step stores them too)."""
        ...

    async def add_log(self, step: Step, name: str, type_: str) -> LogInfo: ...

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        """Queue a chunk for the next group commit; resolves once it is stored."""
        ...

    async def finish_log(self, log_id: int) -> None: ...

    # reads
    async def get_build(self, builder: str, number: int) -> Build | None: ...

    async def list_builds(self, builder: str, limit: int) -> list[Build]: ...

    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None: ...

    async def get_log_info(self, log_id: int) -> LogInfo | None: ...

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]: ...

    # workers
    async def worker_connected(self, name: str, info: dict[str, str], at: float) -> None: ...

    async def worker_disconnected(self, name: str, at: float, reason: str) -> None: ...

    async def list_workers(self) -> list[WorkerRecord]: ...

    # events
    async def events_after(self, since_id: int, limit: int) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    # notifications (written by the notification service through NotificationStore)
    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]: ...


# ---------------------------------------------------------------- notifications (mail, http push)


@dataclass
class Notification:
    """A message a notifier queued: delivered in the background, at most once per `key`."""

    id: int
    notifier: str
    kind: str  # "mail" / "http"
    key: str  # unique: "{notifier}:{builder}:{number}:{event}" - never queued twice
    payload: dict[str, Any]
    state: str  # "pending" / "sent" / "failed"
    attempts: int
    next_attempt_at: float
    last_error: str
    created_at: float
    sent_at: float | None = None


class NotificationStore(Protocol):
    """What the notification service needs from storage (on top of reading builds/events)."""

    async def get_build(self, builder: str, number: int) -> Build | None: ...

    async def previous_build_result(self, builder: str, number: int) -> Result | None: ...

    async def builds_of_buildset(self, buildset_id: int) -> list[tuple[str, int]]: ...

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]: ...

    async def events_after(self, since_id: int, limit: int) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    async def get_notifier_cursor(self, name: str) -> int | None: ...

    async def set_notifier_cursor(self, name: str, event_id: int) -> None: ...

    async def add_notification(
        self, notifier: str, kind: str, key: str, payload: dict[str, Any], at: float
    ) -> bool: ...

    async def claim_due_notifications(
        self, now: float, lease: float, limit: int
    ) -> list[Notification]: ...

    async def notification_sent(self, notification_id: int, at: float) -> None: ...

    async def notification_failed(
        self, notification_id: int, error: str, next_attempt_at: float | None
    ) -> None: ...

    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]: ...
