"""Connected workers: one session per open worker stream, and the registry of them.

The session is the protocol state of the worker stream without the wire: which commands run
there, which output was stored (sequence numbers, for exactly-once storage), which builds hold
its slots, and when it was last heard from. The API adapter feeds it decoded messages and sends
whatever it puts in its outbox.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from coordinator.domain import events
from coordinator.domain.errors import Unauthenticated
from coordinator.domain.ports import TimerHandle, WorkerStatusStore
from coordinator.domain.workers.capacity import effective_capacity
from coordinator.domain.workers.commands import (
    Abandon,
    Ack,
    CommandSpec,
    FileAck,
    FileCancel,
    FileChunk,
    FileCommand,
    Finished,
    Interrupt,
    KeptCommand,
    Output,
    Reattach,
    WorkerLost,
)
from coordinator.domain.workers.transfers import Transfers

log = logging.getLogger(__name__)

Outbound = CommandSpec | Interrupt | Ack | FileCommand | FileChunk | FileAck | FileCancel | Reattach | Abandon
# (channel, data, time marks): see Output.marks.
OutputHandler = Callable[[int, bytes, tuple[int, ...]], Awaitable[None]]
CallLater = Callable[[float, Callable[[], None]], TimerHandle]
# Told the state to show while the worker is away, and "" once the command re-attached.
OnWait = Callable[[str], Awaitable[None]]

# Buildbot's Worker(missing_timeout=...) default is an hour (for notifications); a build waits
# 5 minutes for its worker by default.
DEFAULT_MISSING_TIMEOUT = 300.0


@dataclass
class WorkerDecl:
    """A worker as configured: name, secret, how many builds at once, static properties, and
    how long its builds wait for it to come back after a lost connection."""

    name: str
    secret: str
    max_builds: int = 1
    properties: dict[str, object] = field(default_factory=dict)
    missing_timeout: float = DEFAULT_MISSING_TIMEOUT


@dataclass
class _Running:
    spec: CommandSpec
    on_output: OutputHandler
    done: asyncio.Future[Finished]
    on_wait: OnWait | None = None
    stored_seq: int = 0  # highest seq accepted for storage
    durable_seq: int = 0  # highest seq whose storage completed: what an ack may promise
    pending: set[asyncio.Future[None]] = field(default_factory=set)
    give_up: TimerHandle | None = None  # while the worker is away


class WorkerSession:
    """One worker's session: it outlives a lost stream for the grace period.

    When the stream drops (`lose`), the session is kept, detached, if a build still holds it:
    its commands keep waiting, each for its spec's missing_timeout, and the session itself for
    the longest of those and the worker's missing_timeout. A reconnect within that time
    (`resume`) binds the new stream: each command the worker kept is re-attached (Reattach with
    the last seq stored, so the worker resends exactly the rest), the others fail with
    WorkerLost. Past its time a command fails with WorkerLost (the build ends RETRY) and, when
    the worker reports it later, is abandoned (the worker kills it).
    """

    def __init__(
        self,
        name: str,
        max_builds: int,
        info: dict[str, str],
        send: Callable[[Outbound], None],
        now: Callable[[], float],
        window: int = 32,
        *,
        missing_timeout: float = 0.0,
        call_later: CallLater | None = None,
        agent_limit: int = 0,
    ) -> None:
        self.name = name
        self._call_later = call_later or _loop_call_later
        self.max_builds = max_builds
        # The agent's --max-builds (0: none): a reconfigured max_builds is lowered by it again.
        self.agent_limit = agent_limit
        self.info = info
        self._send = send
        self._now = now
        self._window = window
        self.missing_timeout = missing_timeout
        # The agent said it stops now (its commands are killed): when its stream ends, nothing
        # waits for it to come back.
        self.leaving = False
        self.connected_at = now()
        self.last_heard = self.connected_at
        self.builds: set[str] = set()  # "builder/number" of builds holding a slot
        self._running: dict[str, _Running] = {}
        self.closed = False
        self.closed_reason = ""
        # Detached: the stream dropped and the session waits for the worker to come back.
        self.attached = True
        self.generation = 0  # bumped by each resume: a stale stream's end changes nothing
        self._attach_changed = asyncio.Event()
        self._expiry: TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        # After a coordinator restart: the builds that wait for a command the worker kept, by
        # command id prefix ("BUILDID-STEP-"); resolved when the worker reports (or not) one.
        self._expected: dict[str, asyncio.Future[list[KeptCommand]]] = {}
        # Ended commands whose end the build has not committed yet: last seq by id. The worker
        # is told to forget one (Ack.finished) only once `release`d, so that a coordinator
        # killed in between finds it again.
        self._unreleased: dict[str, int] = {}
        self._interrupts: dict[str, str] = {}  # asked while detached: sent after the Reattach
        # Told when the grace period ends without the worker (the registry forgets the session).
        self.on_expired: Callable[[WorkerSession, str], None] = lambda _s, _r: None
        # File primitives and transfers (mkdir, stat, upload, download, ...).
        self.files = Transfers(self._send_now, window)

    def _send_now(self, item: Outbound) -> None:
        if self.attached:
            self._send(item)  # while detached, nothing can be delivered: resume resends

    @property
    def has_commands(self) -> bool:
        return any(not r.done.done() for r in self._running.values()) or bool(self._expected)

    # -- slots
    @property
    def free_slots(self) -> int:
        return 0 if self.closed or not self.attached else self.max_builds - len(self.builds)

    # -- commands
    async def run_command(self, spec: CommandSpec, on_output: OutputHandler, on_wait: OnWait | None = None) -> Finished:
        """Run a command on the worker; output goes to `on_output` (which resolves once stored).
        While the worker is away, `on_wait` is told the state to show ("" once it is back).
        Raises WorkerLost if the worker goes away and does not come back in time."""
        await self.wait_attached(on_wait)
        fut: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self._running[spec.command_id] = _Running(spec, on_output, fut, on_wait)
        self._send(spec)
        try:
            return await fut
        finally:
            run = self._running.pop(spec.command_id, None)
            if run is not None and run.give_up is not None:
                run.give_up.cancel()

    async def wait_attached(self, on_wait: OnWait | None) -> None:
        """Between commands, a build waits for its worker to come back (or to be given up)."""
        if not self.attached and not self.closed and on_wait is not None:
            await on_wait(waiting_text(self.missing_timeout))
        while not self.attached and not self.closed:
            self._attach_changed.clear()
            await self._attach_changed.wait()
        if self.closed:
            raise WorkerLost(self.closed_reason)

    def release(self, command_ids: Sequence[str]) -> None:
        """The build committed what these commands did: the worker may forget them."""
        for cid in command_ids:
            seq = self._unreleased.pop(cid, None)
            if seq is not None:
                self._send_now(Ack(cid, seq, finished=True))

    # -- after a coordinator restart
    def expect(self, prefix: str) -> asyncio.Future[list[KeptCommand]]:
        """A resumed build waits for the commands of its running step (ids start with `prefix`):
        the future gets those the worker reports when it comes back (none: it has none)."""
        fut: asyncio.Future[list[KeptCommand]] = asyncio.get_running_loop().create_future()
        self._expected[prefix] = fut
        return fut

    def await_return(self, grace: float, reason: str) -> None:
        """Detached from the start (the coordinator restarted): wait `grace` seconds for the
        worker before giving its builds up."""
        self.attached = False
        self.closed_reason = reason
        self._expiry = self._call_later(grace, lambda: self._expire(reason, grace))

    async def adopt_command(
        self, kept: KeptCommand, stored_seq: int, on_output: OutputHandler, on_wait: OnWait | None,
        missing_timeout: float, interrupted: str = "",
    ) -> Finished:
        """Continue a command started before a coordinator restart: the worker resends its
        output after `stored_seq` (what the log holds), then its end. `interrupted`: why the
        build was stopped meanwhile (the command is interrupted at once)."""
        await self.wait_attached(on_wait)
        spec = CommandSpec(kept.command_id, missing_timeout=missing_timeout)
        fut: asyncio.Future[Finished] = asyncio.get_running_loop().create_future()
        self._running[kept.command_id] = _Running(spec, on_output, fut, on_wait, stored_seq, stored_seq)
        self._send(Reattach(kept.command_id, stored_seq))
        if interrupted:
            self._interrupts[kept.command_id] = interrupted
        self._send_interrupt(kept.command_id)
        try:
            if on_wait is not None:
                await on_wait("")  # re-attached
            return await fut
        finally:
            run = self._running.pop(kept.command_id, None)
            if run is not None and run.give_up is not None:
                run.give_up.cancel()

    def forget(self, command_id: str, reason: str) -> None:
        """A kept command the resumed build does not adopt (done and journaled before the
        restart, or not asked for again): the worker forgets it (and kills it if it runs)."""
        self._send_now(Abandon(command_id, reason))

    def interrupt(self, command_id: str, reason: str) -> None:
        if command_id in self._running:
            if self.attached:
                self._send(Interrupt(command_id, reason))
            else:  # the build was stopped while the worker is away: tell it once re-attached
                self._interrupts[command_id] = reason

    # -- what the worker said
    def heard(self) -> None:
        self.last_heard = self._now()

    def on_output(self, msg: Output) -> None:
        run = self._running.get(msg.command_id)
        if run is None:
            return  # output of a command we no longer track (e.g. already failed)
        if msg.seq <= run.stored_seq:
            # A resend: store nothing; acknowledge again only what is already stored (the first
            # copy's own ack follows once its store completes).
            if run.durable_seq:
                self._send_now(Ack(msg.command_id, run.durable_seq))
            return
        run.stored_seq = msg.seq
        stored = asyncio.ensure_future(run.on_output(msg.channel, msg.data, msg.marks))
        run.pending.add(stored)

        def acked(f: asyncio.Future[None], cid: str = msg.command_id, seq: int = msg.seq) -> None:
            run.pending.discard(f)
            if f.cancelled() or f.exception() is not None:
                if not f.cancelled():
                    log.error("storing output of %s failed: %s", cid, f.exception())
                return
            run.durable_seq = max(run.durable_seq, seq)
            if not self.closed:
                self._send_now(Ack(cid, seq))

        stored.add_done_callback(acked)

    def on_finished(self, msg: Finished) -> None:
        run = self._running.get(msg.command_id)
        if run is None:
            # A resend after a reconnect: forgotten when released (if the build still has to
            # commit it), else now (nobody waits for it).
            if msg.command_id not in self._unreleased:
                self._send_now(Ack(msg.command_id, msg.last_seq, finished=True))
            return

        def settle(_: object = None) -> None:
            if not run.done.done():
                self._unreleased[msg.command_id] = run.durable_seq
                run.done.set_result(msg)

        # The command is done only once all its output is stored.
        if run.pending:
            asyncio.gather(*run.pending, return_exceptions=True).add_done_callback(settle)
        else:
            settle()

    # -- the stream's life
    def lose(self, generation: int, reason: str) -> float | None:
        """The stream of `generation` ended: keep the session for the grace period (returned,
        in seconds) if a build holds it, else close it (None)."""
        if generation != self.generation or self.closed:
            return None  # a stale stream (already replaced) or already over
        if not self.attached:
            return None
        runs = [r for r in self._running.values() if not r.done.done()]
        grace = max([self.missing_timeout, *(r.spec.missing_timeout for r in runs)])
        if grace <= 0 or self.leaving or not (runs or self.builds):
            self.close(reason)
            return None
        self.attached = False
        self.closed_reason = reason
        self.files.close(f"worker {self.name} lost: {reason}")
        self._expiry = self._call_later(grace, lambda: self._expire(reason, grace))
        for run in runs:
            wait = run.spec.missing_timeout
            if wait <= 0:
                run.done.set_exception(WorkerLost(f"worker {self.name} lost: {reason}"))
                continue
            run.give_up = self._call_later(wait, functools.partial(self._give_up, run, reason, wait))
            if run.on_wait is not None:
                self._spawn(run.on_wait(waiting_text(wait)))
        return grace

    def resume(self, send: Callable[[Outbound], None], info: dict[str, str], max_builds: int,
               kept: Sequence[KeptCommand], agent_limit: int = 0) -> int:
        """A new stream of the same worker: re-attach what it kept; the new generation."""
        if self.attached:  # the old stream is not known dead yet (a blackhole): it is now
            self.files.close(f"worker {self.name} reconnected")
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._send, self.info, self.max_builds, self.agent_limit = send, info, max_builds, agent_limit
        self.attached = True
        self.closed_reason = ""
        self.generation += 1
        self.connected_at = self.last_heard = self._now()
        self.files = Transfers(self._send_now, self._window)
        by_id = {k.command_id: k for k in kept}
        found: dict[str, list[KeptCommand]] = {}
        for cid, run in list(self._running.items()):
            if run.done.done():
                continue
            if run.give_up is not None:
                run.give_up.cancel()
                run.give_up = None
            if cid in by_id:
                self._spawn(self._reattach(run, self.generation))
            else:
                run.done.set_exception(WorkerLost(f"worker {self.name} came back without command {cid}"))
        for cid, k in by_id.items():
            other = self._running.get(cid)
            if other is not None and not other.done.done():
                continue
            waiting = next(
                (p for p, f in self._expected.items() if cid.startswith(p) and not f.done()), None
            )
            if waiting is not None:
                found.setdefault(waiting, []).append(k)
            elif cid not in self._unreleased:
                self._send(Abandon(cid, "no build waits for it any more"))
        for prefix, fut in self._expected.items():
            if not fut.done():
                fut.set_result(found.get(prefix, []))  # none: the worker came back without them
        self._expected.clear()
        self._attach_changed.set()
        return self.generation

    async def _reattach(self, run: _Running, generation: int) -> None:
        # Stores still in flight decide what is durable; only then is the resend point known.
        if run.pending:
            await asyncio.gather(*run.pending, return_exceptions=True)
        if generation != self.generation or run.done.done():
            return
        run.stored_seq = run.durable_seq  # a failed store is asked for again
        self._send(Reattach(run.spec.command_id, run.durable_seq))
        self._send_interrupt(run.spec.command_id)
        if run.on_wait is not None:
            await run.on_wait("")

    def _send_interrupt(self, command_id: str) -> None:
        reason = self._interrupts.pop(command_id, None)
        if reason is not None:
            self._send(Interrupt(command_id, reason))

    def _give_up(self, run: _Running, reason: str, wait: float) -> None:
        run.give_up = None
        self._interrupts.pop(run.spec.command_id, None)
        if not run.done.done():
            run.done.set_exception(WorkerLost(f"worker {self.name} lost ({reason}) and not back within {wait:g} s"))

    def _expire(self, reason: str, grace: float) -> None:
        self._expiry = None
        self.close(f"{reason}; not back within {grace:g} s")
        self.on_expired(self, self.closed_reason)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self, reason: str) -> None:
        """The session is over: every running command fails with WorkerLost."""
        if self.closed:
            return
        self.closed = True
        self.attached = False
        self.closed_reason = reason
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.files.close(f"worker {self.name} lost: {reason}")
        for run in list(self._running.values()):
            if run.give_up is not None:
                run.give_up.cancel()
            if not run.done.done():
                run.done.set_exception(WorkerLost(f"worker {self.name} lost: {reason}"))
        for fut in self._expected.values():
            if not fut.done():
                fut.set_result([])
        self._interrupts.clear()
        self._attach_changed.set()


def _loop_call_later(delay: float, callback: Callable[[], None]) -> TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback)


def waiting_text(seconds: float) -> str:
    """The state of a step whose worker is away."""
    return f"worker disconnected, waiting up to {seconds:g} s"


class WorkerRegistry:
    """Configured workers, and the sessions of those connected now (each connect and disconnect
    recorded, with its event)."""

    def __init__(self, now: Callable[[], float], store: WorkerStatusStore, call_later: CallLater | None = None) -> None:
        self._now = now
        self._call_later = call_later
        self.store = store
        self.decls: dict[str, WorkerDecl] = {}
        self.sessions: dict[str, WorkerSession] = {}
        self.on_change: Callable[[], None] = lambda: None
        self._tasks: set[asyncio.Future[None]] = set()

    def configure(self, decls: list[WorkerDecl]) -> None:
        """The configured workers (at start and at each reconfig). A connected worker keeps its
        connection and its running builds, and takes its new max_builds (lowered by its agent's
        --max-builds, as at connect) and missing_timeout at once: more slots are used right away;
        fewer start nothing new until enough builds have finished."""
        self.decls = {d.name: d for d in decls}
        changed = False
        for session in self.sessions.values():
            decl = self.decls.get(session.name)
            if decl is None:
                continue  # removed from the configuration: its running builds finish
            capacity = effective_capacity(decl.max_builds, session.agent_limit)
            changed |= capacity != session.max_builds
            session.max_builds, session.missing_timeout = capacity, decl.missing_timeout
        if changed:
            self.on_change()  # the dispatcher looks at the new free slots

    def authenticate(self, name: str, secret: str) -> WorkerDecl:
        """The worker's declaration if `secret` is its secret. A configured secret may be given
        as ``sha256:HEX`` (its SHA-256), so master.py need not hold it in clear."""
        import hashlib
        import hmac

        decl = self.decls.get(name)
        # Compare against a dummy when the name is unknown, and always hash, so timing and
        # message never reveal whether the worker exists or how its secret is stored.
        expected = decl.secret if decl is not None else "sha256:" + "0" * 64
        digest = "sha256:" + hashlib.sha256(secret.encode()).hexdigest()
        presented = digest if expected.startswith("sha256:") else secret
        if not hmac.compare_digest(expected.encode(), presented.encode()) or decl is None:
            raise Unauthenticated("wrong worker name or secret")
        return decl

    def resumable(self, name: str) -> WorkerSession | None:
        """The session a reconnecting worker `name` continues: one a build still holds."""
        session = self.sessions.get(name)
        if session is None or session.closed or not (session.builds or session.has_commands):
            return None
        return session

    async def resume(
        self, session: WorkerSession, send: Callable[[Outbound], None], info: dict[str, str], max_builds: int,
        kept: Sequence[KeptCommand], agent_limit: int = 0,
    ) -> int:
        """The worker is back on a new stream: re-attach its session; the stream's generation."""
        generation = session.resume(send, info, max_builds, kept, agent_limit)
        at = self._now()
        await self.store.worker_connected(session.name, info, at, [events.worker_connected(session.name, info, at)])
        self.on_change()
        return generation

    async def lost(self, session: WorkerSession, generation: int, reason: str) -> bool:
        """The stream of `generation` ended: keep the session waiting for the worker (within its
        grace period) or end it; whether that was recorded (False for a stale stream)."""
        if generation != session.generation:
            return False
        grace = session.lose(generation, reason)
        if grace is None:
            session.close(reason)
            return await self.disconnect(session, reason)
        at = self._now()
        why = f"{reason}; its builds wait up to {grace:g} s for it to return"
        await self.store.worker_disconnected(session.name, at, [events.worker_disconnected(session.name, why, at)])
        self.on_change()
        return True

    def _expired(self, session: WorkerSession, reason: str) -> None:
        if self.detach(session):
            at = self._now()
            task = asyncio.ensure_future(
                self.store.worker_disconnected(session.name, at, [events.worker_disconnected(session.name, reason, at)])
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def adopt(self, decl: WorkerDecl, grace: float) -> WorkerSession:
        """After a coordinator restart: the session of a worker whose builds resume, waiting
        `grace` seconds for the worker to reconnect (one per worker)."""
        session = self.sessions.get(decl.name)
        if session is None:
            session = WorkerSession(
                decl.name, decl.max_builds, {}, lambda _m: None, self._now, missing_timeout=decl.missing_timeout,
                call_later=self._call_later,
            )
            session.on_expired = self._expired
            session.await_return(grace, "coordinator restarted")
            self.sessions[decl.name] = session
        return session

    async def connect(self, session: WorkerSession) -> WorkerSession | None:
        """Record the session and attach it; returns the one it replaces (to be closed)."""
        session.on_expired = self._expired
        at = self._now()
        await self.store.worker_connected(
            session.name, session.info, at, [events.worker_connected(session.name, session.info, at)]
        )
        return self.attach(session)

    async def disconnect(self, session: WorkerSession, reason: str) -> bool:
        """Detach the session and record that, unless a newer one replaced it; whether it did."""
        if not self.detach(session):
            return False
        at = self._now()
        await self.store.worker_disconnected(session.name, at, [events.worker_disconnected(session.name, reason, at)])
        return True

    def attach(self, session: WorkerSession) -> WorkerSession | None:
        """Register a new session; returns the previous one for that name (to be closed)."""
        old = self.sessions.get(session.name)
        self.sessions[session.name] = session
        self.on_change()
        return old

    def detach(self, session: WorkerSession) -> bool:
        if self.sessions.get(session.name) is session:
            del self.sessions[session.name]
            self.on_change()
            return True
        return False

    def silent_since(self, deadline: float) -> list[WorkerSession]:
        """The attached sessions not heard from since `deadline`: the ones to drop as lost."""
        return [s for s in self.sessions.values() if s.attached and s.last_heard < deadline]
