"""The notification service: turns build events into durable notifications, and delivers them.

Two background loops, neither ever in a build's path:

* **queueing** - the EventBus listener only sets a wake-up flag (it never blocks or queues
  without bound). The loop then reads the stored events after its cursor (persisted in
  ``notifier_state``), so nothing is missed when it falls behind or the coordinator restarts.
  For each event a notifier wants, it renders the message and stores it as a *pending*
  notification under a unique key (notifier, build, event): a message is never queued twice,
  also when events are read again after a crash.
* **delivery** - claims due pending notifications (a lease, one conditional UPDATE each),
  delivers them, marks them *sent*, or records the error and retries with exponential backoff,
  marking them *failed* after ``max_attempts``, with the reason logged and kept in the table.

Residual window: a coordinator killed after the SMTP server accepted a message but before the
``sent`` mark was committed sends that one message again when its lease ends (the message keeps
its Message-ID, so mail clients can still show it once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from coordinator.domain.events import Event, EventBus
from coordinator.domain.model import Build, Step
from coordinator.domain.ports import (
    BuildHistory,
    BuildsetReads,
    EventCursor,
    LogReads,
    Notification,
    Outbox,
    SecretProvider,
)
from coordinator.domain.results import Result
from notifiers.base import Notifier
from notifiers.render import FAILING_TESTS, LOG_TAIL_LINES, MessageContext

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 64 * 1024
EVENT_PAGE = 500
# Events about a build request that has no build yet (commit-status reporters' "pending").
REQUEST_EVENTS = ("buildrequest.added", "buildrequest.cancelled")


class NotificationService:
    def __init__(
        self,
        *,
        builds: BuildHistory,
        logs: LogReads,
        events: EventCursor,
        outbox: Outbox,
        bus: EventBus,
        notifiers: Sequence[Notifier],
        url: str = "",
        builder_tags: dict[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        cursor_name: str = "notifications",
        retry_base: float = 1.0,
        retry_cap: float = 300.0,
        max_attempts: int = 10,
        poll_interval: float = 1.0,
        lease: float = 600.0,
        concurrency: int = 4,
        close_grace: float = 5.0,
        buildsets: BuildsetReads | None = None,
        secrets: Sequence[SecretProvider] = (),
    ) -> None:
        self.builds = builds
        self.logs = logs
        self.events = events
        self.outbox = outbox
        self.bus = bus
        self.notifiers = list(notifiers)
        self._by_name = {n.name: n for n in self.notifiers}
        self.buildsets = buildsets
        self.secrets = list(secrets)
        for n in self.notifiers:
            n.secret_lookup = self.secret
        self.url = url.rstrip("/")
        self.builder_tags = dict(builder_tags or {})
        self.clock = clock
        self.cursor_name = cursor_name
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.lease = lease
        self.concurrency = concurrency
        self.close_grace = close_grace
        self._kinds = {k for n in self.notifiers for k in n.events}
        self._events_wake = asyncio.Event()
        self._delivery_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.cursor = 0

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Resume from the stored cursor (first run: from now on); resume pending deliveries."""
        cursor = await self.outbox.get_notifier_cursor(self.cursor_name)
        if cursor is None:
            cursor = await self.events.last_event_id()
            await self.outbox.set_notifier_cursor(self.cursor_name, cursor)
        self.cursor = cursor
        self.bus.add_listener(self._on_event)
        loop = asyncio.get_running_loop()
        self._events_wake.set()  # catch up with what happened while we were down
        self._delivery_wake.set()
        self._tasks = [
            loop.create_task(self._queue_loop(), name="notifications-queue"),
            loop.create_task(self._delivery_loop(), name="notifications-delivery"),
        ]

    async def aclose(self) -> None:
        """Stop; deliveries in flight get a few seconds to finish (then their lease covers them)."""
        if self._closing:
            return
        self._closing = True
        self.bus.remove_listener(self._on_event)  # a reconfig may start another service on the bus
        self._events_wake.set()
        self._delivery_wake.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.close_grace)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for n in self.notifiers:
            try:
                await asyncio.wait_for(n.aclose(), self.close_grace)
            except Exception:
                log.exception("notifications: closing %s failed", n.name)

    def secret(self, name: str) -> str | None:
        """A secret's value from the first provider that has it (read when needed, so a
        rotated secret applies to the next delivery)."""
        for provider in self.secrets:
            value = provider.get(name)
            if value is not None:
                return value
        return None

    def _on_event(self, event: Event) -> None:
        # Runs inside EventBus.publish: only a flag, never a wait.
        if not self._closing and event.kind in self._kinds:
            self._events_wake.set()

    # ---------------------------------------------------------------- queueing

    async def _queue_loop(self) -> None:
        while not self._closing:
            try:
                # The timeout also picks up events other coordinators stored.
                await asyncio.wait_for(self._events_wake.wait(), self.poll_interval * 5)
            except TimeoutError:
                pass
            self._events_wake.clear()
            if self._closing:
                return
            try:
                await self.catch_up()
            except Exception:
                log.exception("notifications: reading events failed; retrying")
                await asyncio.sleep(self.poll_interval)

    async def catch_up(self) -> None:
        """Handle every stored event after the cursor (also what the live bus announced)."""
        while True:
            events = await self.events.events_after(self.cursor, EVENT_PAGE)
            if not events:
                return
            for event in events:
                if event.kind in self._kinds:
                    try:
                        await self.handle(event)
                    except Exception:
                        log.exception("notifications: cannot handle event %d (%s %s #%d)",
                                      event.id, event.kind, event.builder, event.build_number)
            self.cursor = events[-1].id
            await self.outbox.set_notifier_cursor(self.cursor_name, self.cursor)

    async def handle(self, event: Event) -> None:
        contexts: dict[tuple[str, int], MessageContext | None] = {}  # (builder, number) or a request

        async def ctx_of(builder: str, number: int) -> MessageContext | None:
            if (builder, number) not in contexts:
                contexts[(builder, number)] = await self.context(builder, number)
            return contexts[(builder, number)]

        queued = False
        for n in self.notifiers:
            if event.kind not in n.events:
                continue
            if event.kind == "buildset.finished":
                found = [await ctx_of(b, num) for b, num in await self.builds.builds_of_buildset(event.buildset_id)]
                builds = [c for c in found if c is not None
                          and n.wants_builder(c.build.builder, self.builder_tags.get(c.build.builder, ()))]
                if not builds or not any(
                    n.wants_result(c.build.result or Result.SUCCESS, c.previous) for c in builds
                ):
                    continue
                key = f"{n.name}:buildset:{event.buildset_id}"
            elif event.kind in REQUEST_EVENTS:
                if not n.wants_builder(event.builder, self.builder_tags.get(event.builder, ())):
                    continue
                request_id = int(event.details.get("request_id", 0))
                if ("request", request_id) not in contexts:
                    contexts[("request", request_id)] = await self.request_context(event, request_id)
                ctx = contexts[("request", request_id)]
                if ctx is None:
                    continue
                builds = [ctx]
                key = f"{n.name}:{event.builder}:request{request_id}:{event.kind}"
            else:
                if not n.wants_builder(event.builder, self.builder_tags.get(event.builder, ())):
                    continue
                ctx = await ctx_of(event.builder, event.build_number)
                if ctx is None:
                    continue
                if event.kind == "build.started":
                    # Read after the fact, the build may have finished meanwhile: a started
                    # message describes it as it started.
                    ctx = MessageContext(build=dataclasses.replace(ctx.build, result=None, finished_at=None),
                                         previous=ctx.previous, url=ctx.url)
                if event.kind == "build.finished" and not n.wants_result(
                    event.result if event.result is not None else Result.SUCCESS, ctx.previous
                ):
                    continue
                builds = [ctx]
                key = f"{n.name}:{event.builder}:{event.build_number}:{event.kind}"
            for c in builds:
                c.event_id = event.id
            payload = n.render(event.kind, builds)
            if payload is None:
                log.info("notifications: %s has nobody to notify about %s", n.name, key)
                continue
            if await self.outbox.add_notification(n.name, n.kind, key, payload, self.clock()):
                queued = True
        if queued:
            self._delivery_wake.set()

    async def context(self, builder: str, number: int) -> MessageContext | None:
        build = await self.builds.get_build(builder, number)
        if build is None:
            return None
        previous = await self.builds.previous_build_result(builder, number)
        ctx = MessageContext(build=build, previous=previous,
                           url=f"{self.url}/builders/{builder}/builds/{number}" if self.url else "")
        step = failing_step(build)
        if step is not None:
            ctx.failing_step = step.name
            logs = sorted(step.logs, key=lambda lg: lg.name != "stdio")
            if logs:
                ctx.log_tail = await self.log_tail(logs[0].id, logs[0].size)
            ctx.failing_tests = await self.builds.failing_cases(builder, number, FAILING_TESTS)
        return ctx

    async def request_context(self, event: Event, request_id: int) -> MessageContext | None:
        """A build request that has not started: its buildset's source stamps and properties
        in a Build without a number (what a "pending" commit status needs)."""
        if self.buildsets is None:
            return None
        bs = await self.buildsets.get_buildset(event.buildset_id)
        if bs is None:
            return None
        build = Build(
            id=0, builder=event.builder, number=0, worker="", build_request_id=request_id,
            buildset_id=bs.id, started_at=event.at, state_string="pending",
            result=event.result, properties=list(bs.properties), reason=bs.reason,
            sourcestamps=list(bs.sourcestamps),
        )
        return MessageContext(build=build, url=f"{self.url}/builders/{event.builder}" if self.url else "")

    async def log_tail(self, log_id: int, size: int, lines: int = LOG_TAIL_LINES) -> list[str]:
        start = max(0, size - LOG_TAIL_BYTES)
        chunks = await self.logs.read_log(log_id, start, LOG_TAIL_BYTES, 0)
        text = b"".join(c.data for c in chunks).decode("utf-8", "replace")
        return text.splitlines()[-lines:]

    # ---------------------------------------------------------------- delivery

    async def _delivery_loop(self) -> None:
        while not self._closing:
            try:
                due = await self.outbox.claim_due_notifications(self.clock(), self.lease, self.concurrency)
            except Exception:
                log.exception("notifications: reading the queue failed; retrying")
                due = []
            if due:
                await asyncio.gather(*(self.deliver(n) for n in due))
                continue
            try:
                await asyncio.wait_for(self._delivery_wake.wait(), self.poll_interval)
            except TimeoutError:
                pass
            self._delivery_wake.clear()

    def backoff(self, attempts: int) -> float:
        return float(min(self.retry_base * 2 ** max(0, attempts - 1), self.retry_cap))

    async def deliver(self, n: Notification) -> None:
        """One attempt at one claimed notification; never raises (errors are recorded)."""
        notifier = self._by_name.get(n.notifier)
        try:
            if notifier is None:
                raise LookupError(f"notifier {n.notifier!r} is no longer configured")
            await notifier.deliver(n.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of a delivery is recorded, never raised
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            # A DeliveryRejected (the service refused the message: a 4xx) is not retried.
            give_up = (notifier is None or not getattr(exc, "retryable", True)
                       or n.attempts >= self.max_attempts)
            try:
                if give_up:
                    log.error("notification %d (%s) failed for good after %d attempt(s): %s",
                              n.id, n.key, n.attempts, error)
                    await self.outbox.notification_failed(n.id, error, None)
                else:
                    delay = self.backoff(n.attempts)
                    log.warning("notification %d (%s) attempt %d failed, retrying in %.1fs: %s",
                                n.id, n.key, n.attempts, delay, error)
                    await self.outbox.notification_failed(n.id, error, self.clock() + delay)
            except Exception:
                log.exception("notifications: cannot record the failure of %d", n.id)
            return
        try:
            await self.outbox.notification_sent(n.id, self.clock())
            log.info("notification %d (%s) sent", n.id, n.key)
        except Exception:
            log.exception("notifications: %d was sent but cannot be marked sent", n.id)


def failing_step(build: Build) -> Step | None:
    """The step to show in a message: the first that failed (or raised, or warned, matching the
    build's result); None for a successful build."""
    if build.result in (None, Result.SUCCESS):
        return None
    wanted: tuple[Result, ...] = (build.result,)
    for results in (wanted, (Result.FAILURE, Result.EXCEPTION)):
        for step in build.steps:
            if step.result in results:
                return step
    return None
