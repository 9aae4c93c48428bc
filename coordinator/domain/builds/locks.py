"""Locks (Buildbot's interlocks): limit how many builds or steps use a shared resource at once.

A configuration declares lock *ids* — ``MasterLock(name, maxCount)`` (one lock for the whole
coordinator) and ``WorkerLock(name, maxCount, maxCountForWorker)`` (one lock per worker) — and
uses them on builders and steps as ``lock.access("exclusive")`` or ``lock.access("counting")``;
a bare lock means counting access, as in Buildbot.  Counting access admits up to maxCount
holders at once; exclusive access admits one holder and no one else.

The real locks (:class:`RealLock`) live in a :class:`LockRegistry` owned by the dispatcher.
Waiters are served strictly first come, first served, so an exclusive waiter is never starved
by a stream of counting ones.  Several locks are always taken in name order, so two builds
needing the same locks can never deadlock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coordinator.domain.location import caller_location

MODES = ("counting", "exclusive")


class BaseLock:
    """A lock id as the configuration declares it."""

    kind = "lock"

    def __init__(self, name: str, maxCount: int = 1) -> None:
        self.defined_at = caller_location()
        self.errors: list[str] = []
        self.name = name
        self.maxCount = maxCount
        if not isinstance(name, str) or not name.strip():
            self.errors.append(f"a lock needs a non-empty name, not {name!r}")
        if not _count_ok(maxCount):
            self.errors.append(f"lock {name!r}: maxCount must be a whole number >= 1, not {maxCount!r}")

    def access(self, mode: str) -> LockAccess:
        """Use the lock in this mode: "exclusive" or "counting"."""
        return LockAccess(self, mode)

    def signature(self) -> tuple[object, ...]:
        """What must agree between two declarations of the same name."""
        return (self.kind, self.maxCount)

    def max_count(self, worker: str) -> int:
        return self.maxCount

    def key(self, worker: str) -> tuple[str, str]:
        """Which real lock a build on `worker` uses."""
        return (self.name, "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, maxCount={self.maxCount})"


class MasterLock(BaseLock):
    """One lock shared by every builder and worker of the coordinator."""

    kind = "MasterLock"


class WorkerLock(BaseLock):
    """One lock per worker: limits what runs at once on each worker; maxCountForWorker gives
    some workers a different count."""

    kind = "WorkerLock"

    def __init__(self, name: str, maxCount: int = 1, maxCountForWorker: Mapping[str, int] | None = None) -> None:
        super().__init__(name, maxCount)
        self.defined_at = caller_location()
        self.maxCountForWorker = dict(maxCountForWorker or {})
        for worker, count in self.maxCountForWorker.items():
            if not isinstance(worker, str) or not _count_ok(count):
                self.errors.append(
                    f"lock {name!r}: maxCountForWorker must map worker names to whole numbers >= 1, "
                    f"not {worker!r}: {count!r}"
                )

    def signature(self) -> tuple[object, ...]:
        return (self.kind, self.maxCount, tuple(sorted(self.maxCountForWorker.items())))

    def max_count(self, worker: str) -> int:
        return self.maxCountForWorker.get(worker, self.maxCount)

    def key(self, worker: str) -> tuple[str, str]:
        return (self.name, worker)


@dataclass(frozen=True)
class LockAccess:
    lock: BaseLock
    mode: str

    @property
    def errors(self) -> list[str]:
        if self.mode not in MODES:
            return [f"lock {self.lock.name!r}: access must be 'exclusive' or 'counting', not {self.mode!r}"]
        return []


def accesses(items: Iterable[object]) -> list[LockAccess]:
    """Normalise a `locks=[...]` list: a bare lock is counting access (Buildbot's default),
    sorted by name (the order they are taken in)."""
    given = [i for i in items if isinstance(i, BaseLock | LockAccess)]
    out = [i if isinstance(i, LockAccess) else LockAccess(i, "counting") for i in given]
    return sorted(out, key=lambda a: a.lock.name)


def lock_errors(items: object) -> list[str]:
    """What is wrong with a `locks=` option (for checkconfig)."""
    if not isinstance(items, list | tuple):
        return [f"locks must be a list of locks such as MasterLock('name'), not {items!r}"]
    errors: list[str] = []
    for item in items:
        if isinstance(item, LockAccess):
            errors.extend(item.errors)
            errors.extend(item.lock.errors)
        elif isinstance(item, BaseLock):
            errors.extend(item.errors)
        else:
            errors.append(f"locks must contain MasterLock(...) / WorkerLock(...) or lock.access(...), not {item!r}")
    return errors


def _count_ok(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class RealLock:
    """A lock's state: its holders and its FIFO of waiters."""

    def __init__(self, name: str, max_count: int) -> None:
        self.name = name
        self.max_count = max_count
        self._holders: dict[object, str] = {}  # owner -> mode
        self._waiters: deque[tuple[object, str, asyncio.Future[None]]] = deque()

    def _fits(self, mode: str) -> bool:
        if mode == "exclusive":
            return not self._holders
        return "exclusive" not in self._holders.values() and len(self._holders) < self.max_count

    def available(self, mode: str) -> bool:
        """Could `mode` be granted right now without jumping the queue?"""
        return not self._waiters and self._fits(mode)

    def acquire(self, owner: object, mode: str) -> asyncio.Future[None]:
        """A future that resolves once `owner` holds the lock (already resolved if free)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((owner, mode, fut))
        self._grant()
        return fut

    def cancel(self, owner: object, fut: asyncio.Future[None]) -> None:
        """Give up waiting (or release, if it was granted meanwhile)."""
        if fut.done() and not fut.cancelled():
            self.release(owner)
            return
        fut.cancel()
        self._waiters = deque(w for w in self._waiters if w[2] is not fut)
        self._grant()  # the departed head may have been what blocked the others

    def release(self, owner: object) -> None:
        if self._holders.pop(owner, None) is not None:
            self._grant()

    def _grant(self) -> None:
        while self._waiters:
            owner, mode, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._fits(mode):
                return
            self._waiters.popleft()
            self._holders[owner] = mode
            fut.set_result(None)

    @property
    def holders(self) -> int:
        return len(self._holders)


class LockRegistry:
    """The real locks of a coordinator, made on first use; reconfiguration keeps their state."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], RealLock] = {}

    def get(self, access: LockAccess, worker: str) -> RealLock:
        key = access.lock.key(worker)
        real = self._locks.get(key)
        count = access.lock.max_count(worker)
        if real is None:
            real = self._locks[key] = RealLock(access.lock.name, count)
        real.max_count = count
        return real

    def blocked(self, wanted: Iterable[LockAccess], worker: str) -> str:
        """Name of the first lock of `wanted` that is not available on `worker` ("" if none)."""
        for access in wanted:
            if not self.get(access, worker).available(access.mode):
                return access.lock.name
        return ""


class LockSet:
    """Locks one owner (a build or a step) holds, taken in order, released together."""

    def __init__(self, registry: LockRegistry, wanted: Iterable[LockAccess], worker: str) -> None:
        self._items = [(a, registry.get(a, worker)) for a in wanted]
        self._held: list[RealLock] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    async def acquire(self, owner: object, on_wait: Callable[[str], Awaitable[None]], stopped: asyncio.Event) -> bool:
        """Take every lock in order; `on_wait(name)` is awaited before waiting on one.
        Returns False (holding nothing) if `stopped` is set before all are held."""
        for access, real in self._items:
            fut = real.acquire(owner, access.mode)
            if not fut.done():
                await on_wait(access.lock.name)
                stop: asyncio.Future[Any] = asyncio.ensure_future(stopped.wait())
                either: set[asyncio.Future[Any]] = {fut, stop}
                try:
                    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                except BaseException:
                    real.cancel(owner, fut)
                    self.release(owner)
                    raise
                finally:
                    stop.cancel()
            if stopped.is_set():
                real.cancel(owner, fut)
                self.release(owner)
                return False
            self._held.append(real)
        return True

    def release(self, owner: object) -> None:
        while self._held:
            self._held.pop().release(owner)
