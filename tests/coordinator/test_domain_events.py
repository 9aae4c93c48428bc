"""EventBus fan-out and overflow, and StatusFeed's replay-then-live with no gap or duplicate."""

from __future__ import annotations

import asyncio
import logging

import pytest

from coordinator.domain.builds import bookkeeping
from coordinator.domain.events import Event, EventBus, EventFilter, SubscriberOverflow
from coordinator.domain.model import BuildRequest, NewBuildset
from coordinator.domain.results import Result
from coordinator.domain.status import feed as status
from coordinator.domain.status.feed import StatusFeed
from coordinator.storage.memory import MemoryStorage
from tests.coordinator.fakes import FakeEventStore

NO_BUILDS = MemoryStorage().builds  # the replay tests read events only


def no_events(*stored: object) -> list[Event]:
    return []


def ev(i: int, kind: str = "build.started", builder: str = "") -> Event:
    return Event(kind=kind, at=float(i), builder=builder, id=i)


# ------------------------------------------------------------------------------------ EventBus


def test_publish_fans_out_in_order_and_tracks_last_id() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    bus.publish([ev(1), ev(2)])
    bus.publish([ev(3)])
    for sub in (a, b):
        assert [sub.get_nowait().id for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
        assert sub.get_nowait() is None
    assert bus.last_id == 3


def test_filters_by_builder_and_kind() -> None:
    bus = EventBus()
    only_a = bus.subscribe(EventFilter(builders=frozenset({"a"})))
    finished = bus.subscribe(EventFilter(kinds=frozenset({"build.finished"})))
    bus.publish([
        ev(1, builder="a"), ev(2, builder="b"), ev(3, "change.added"), ev(4, "build.finished", "b"),
    ])
    # Events tied to no builder (changes, workers) pass a builder filter.
    assert [e.id for e in iter(only_a.get_nowait, None)] == [1, 3]
    assert [e.id for e in iter(finished.get_nowait, None)] == [4]


async def test_overflow_drops_the_slow_subscriber_without_blocking_the_publisher() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    fast = bus.subscribe(maxsize=100)
    ignored = bus.subscribe(EventFilter(kinds=frozenset({"worker.connected"})), maxsize=1)
    bus.publish([ev(i) for i in range(1, 6)])  # returns at once: nothing awaits a consumer
    assert slow.overflowed and not fast.overflowed
    assert not ignored.overflowed  # events it filters out do not fill its queue
    with pytest.raises(SubscriberOverflow):
        await slow.get()
    bus.publish([ev(6)])
    with pytest.raises(SubscriberOverflow):
        await slow.get()  # stays overflowed: it must resume from its last id
    assert [(await fast.get()).id for _ in range(6)] == [1, 2, 3, 4, 5, 6]


async def test_a_waiting_consumer_sees_overflow_instead_of_hanging() -> None:
    bus = EventBus()
    sub = bus.subscribe(maxsize=1)
    got: list[int] = []
    waiting = asyncio.Event()

    async def consume() -> None:
        while True:
            waiting.set()  # and then block in get() within the same step
            got.append((await sub.get()).id)

    task = asyncio.ensure_future(consume())
    await waiting.wait()  # the consumer is now blocked on the empty queue
    bus.publish([ev(1), ev(2), ev(3)])
    with pytest.raises(SubscriberOverflow):
        await asyncio.wait_for(task, 5)
    assert got == [1]


def test_unsubscribe_and_context_manager() -> None:
    bus = EventBus()
    with bus.subscribe() as sub:
        bus.publish([ev(1)])
    bus.publish([ev(2)])
    assert sub.get_nowait() == ev(1) and sub.get_nowait() is None


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[int] = []

    def bad(e: Event) -> None:
        raise RuntimeError("listener bug")

    bus.add_listener(bad)
    bus.add_listener(lambda e: seen.append(e.id))
    with caplog.at_level(logging.ERROR):
        bus.publish([ev(1), ev(2)])
    assert seen == [1, 2]
    assert "event listener failed" in caplog.text


# ------------------------------------------------------------------------------------ StatusFeed


async def collect(feed_iter, n: int) -> list[Event | None]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        out.append(await asyncio.wait_for(anext(feed_iter), 5))
    return out


async def test_replay_then_live() -> None:
    bus = EventBus()
    store = FakeEventStore(bus)
    for _ in range(5):
        store.commit()
    gen = StatusFeed(store, NO_BUILDS, bus).follow(since_id=2)
    assert [e.id for e in await collect(gen, 3)] == [3, 4, 5]  # type: ignore[union-attr]
    assert store.reads == 1  # a short page ends the replay
    store.commit()
    assert (await asyncio.wait_for(anext(gen), 5)).id == 6  # type: ignore[union-attr]
    assert store.reads == 1  # live events come from the bus, not the database
    await gen.aclose()  # type: ignore[attr-defined]  # it is an async generator
    assert not bus._subscriptions  # closing the stream unsubscribes


@pytest.mark.parametrize("page", [1, 2, 3, 500])
async def test_commits_during_replay_are_delivered_once_and_in_order(
    page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer commits while the feed replays: before a page is read (stored and published:
    seen twice), between storing and publishing (in the page, published later), and after the
    page is read (only live). Every event comes out exactly once, in id order."""
    monkeypatch.setattr(status, "REPLAY_PAGE", page)
    bus = EventBus()
    store = FakeEventStore(bus)
    for _ in range(4):
        store.commit()
    unpublished: list[Event] = []

    def before(n: int) -> None:
        if n <= 3:
            store.commit()  # stored and published before this page is read
        if n == 2:
            unpublished.append(store.commit(publish=False))  # committed, publish still to come

    def after(n: int) -> None:
        if unpublished:
            bus.publish([unpublished.pop()])
        if n <= 3:
            store.commit()  # committed and published after this page was read

    store.before_read, store.after_read = before, after
    gen = StatusFeed(store, NO_BUILDS, bus).follow(since_id=0)
    got: list[int] = []
    while len(got) < len(store.events) or not store.reads:
        got.append((await asyncio.wait_for(anext(gen), 5)).id)  # type: ignore[union-attr]
    store.commit()
    got.append((await asyncio.wait_for(anext(gen), 5)).id)  # type: ignore[union-attr]
    assert got == list(range(1, len(store.events) + 1))
    await gen.aclose()  # type: ignore[attr-defined]  # it is an async generator


async def test_filtered_follow_skips_other_builders_in_replay_and_live() -> None:
    bus = EventBus()
    store = FakeEventStore(bus)
    store.commit(builder="a")
    store.commit(builder="b")
    store.commit("change.added")
    gen = StatusFeed(store, NO_BUILDS, bus).follow(since_id=0, flt=EventFilter(builders=frozenset(["a"])))
    assert [e.id for e in await collect(gen, 2)] == [1, 3]  # type: ignore[union-attr]
    store.commit(builder="b")
    store.commit(builder="a")
    assert [e.id for e in await collect(gen, 1)] == [5]  # type: ignore[union-attr]
    await gen.aclose()  # type: ignore[attr-defined]  # it is an async generator


async def test_negative_since_means_live_only() -> None:
    bus = EventBus()
    store = FakeEventStore(bus)
    for _ in range(3):
        store.commit()
    subscribed = asyncio.Event()

    async def on_subscribed() -> None:
        subscribed.set()

    gen = StatusFeed(store, NO_BUILDS, bus).follow(since_id=-1, on_subscribed=on_subscribed)
    nxt = asyncio.ensure_future(anext(gen))
    await subscribed.wait()
    store.commit()
    assert (await asyncio.wait_for(nxt, 5)).id == 4  # type: ignore[union-attr]
    assert store.reads == 0  # live only: no history read (thousands may subscribe at once)
    await gen.aclose()  # type: ignore[attr-defined]  # it is an async generator


async def test_a_consumer_too_far_behind_gets_none_then_the_stream_ends() -> None:
    bus = EventBus()
    store = FakeEventStore(bus)
    gen = StatusFeed(store, NO_BUILDS, bus, buffer=2).follow(since_id=0)
    nxt = asyncio.ensure_future(anext(gen))
    await store.changes.until(lambda: store.reads == 1)
    for _ in range(5):
        store.commit()
    assert (await asyncio.wait_for(nxt, 5)).id == 1  # type: ignore[union-attr]
    rest = []
    async for item in gen:
        rest.append(item)
    assert rest[-1] is None and all(e is not None for e in rest[:-1])


@pytest.mark.parametrize("since", [-1, 0])
async def test_events_published_while_signalling_subscription_are_not_lost(since: int) -> None:
    """`on_subscribed` tells a client its stream is live; whatever is published from then on
    (even before the signal's own await returns) must reach it."""
    bus = EventBus()
    store = FakeEventStore(bus)
    store.commit()
    seen_during_signal: list[int] = []

    async def on_subscribed() -> None:
        seen_during_signal.append(store.commit().id)  # e.g. the client's change, already published

    gen = StatusFeed(store, NO_BUILDS, bus).follow(since_id=since, on_subscribed=on_subscribed)
    first = await asyncio.wait_for(anext(gen), 5)
    expected = [1, 2] if since == 0 else [2]
    got = [first.id]  # type: ignore[union-attr]
    while len(got) < len(expected):
        got.append((await asyncio.wait_for(anext(gen), 5)).id)  # type: ignore[union-attr]
    assert seen_during_signal == [2] and got == expected
    await gen.aclose()  # type: ignore[attr-defined]  # it is an async generator


def test_filters_by_buildset_and_worker() -> None:
    bus = EventBus()
    bs7 = bus.subscribe(EventFilter(buildset_id=7))
    w1 = bus.subscribe(EventFilter(worker="w1"))
    bus.publish([
        Event(kind="build.started", at=1.0, buildset_id=7, worker="w1", id=1),
        Event(kind="build.started", at=2.0, buildset_id=8, worker="w2", id=2),
        Event(kind="change.added", at=3.0, id=3),
        Event(kind="worker.connected", at=4.0, worker="w1", id=4),
    ])
    assert [bs7.get_nowait().id for _ in range(1)] == [1]  # type: ignore[union-attr]
    assert bs7.get_nowait() is None
    assert [w1.get_nowait().id for _ in range(2)] == [1, 4]  # type: ignore[union-attr]
    assert w1.get_nowait() is None


async def test_an_unknown_event_kind_is_rejected() -> None:
    from coordinator.domain.errors import InvalidArgument

    bus = EventBus()
    gen = StatusFeed(FakeEventStore(bus), NO_BUILDS, bus).follow(
        since_id=0, flt=EventFilter(kinds=frozenset({"build.finsihed"}))
    )
    with pytest.raises(InvalidArgument, match="build.finsihed"):
        await anext(gen)


async def test_a_build_watcher_that_overflowed_unsubscribes_when_it_ends() -> None:
    bus, storage = EventBus(), MemoryStorage()
    bs_id, requests = await storage.buildsets.add_buildset(NewBuildset("r", "s", ["b"], []), 0.0, None, no_events)
    request = BuildRequest(id=requests["b"], buildset_id=bs_id, builder="b", priority=0, submitted_at=0.0)
    build = await storage.builds.start_build(request, "w", [], 0.0, [], no_events)
    before = len(bus._subscriptions)
    gen = StatusFeed(storage.events, storage.builds, bus, buffer=1).watch_build("b", 1)
    first = await asyncio.wait_for(anext(gen), 5)
    assert first.event is None and not first.build.complete
    bus.publish([Event(kind="step.started", at=1.0, builder="b", build_number=1, id=1),
                 Event(kind="step.finished", at=2.0, builder="b", build_number=1, id=2)])  # one too many
    resumed = await asyncio.wait_for(anext(gen), 5)
    assert resumed.event is None and not resumed.build.complete  # fell behind: the state, re-read
    assert len(bus._subscriptions) == before + 1  # the replacement subscription, live
    await bookkeeping.finish_build(storage.book, build, Result.SUCCESS, "build successful", 3.0)
    bus.publish([Event(kind="build.finished", at=3.0, builder="b", build_number=1, id=3)])
    last = await asyncio.wait_for(anext(gen), 5)
    assert last.event is not None and last.event.id == 3 and last.build.complete
    with pytest.raises(StopAsyncIteration):
        await anext(gen)
    assert len(bus._subscriptions) == before  # the replacement was unsubscribed too


async def test_a_build_watcher_ends_with_build_finished_even_when_it_reads_the_end_earlier() -> None:
    """An event handled after the build's end was committed reads a complete build: the watch
    still goes on to the build.finished event (the race a full CI run hit)."""
    bus, storage = EventBus(), MemoryStorage()
    bs_id, requests = await storage.buildsets.add_buildset(NewBuildset("r", "s", ["b"], []), 0.0, None, no_events)
    request = BuildRequest(id=requests["b"], buildset_id=bs_id, builder="b", priority=0, submitted_at=0.0)
    build = await storage.builds.start_build(request, "w", [], 0.0, [], no_events)
    gen = StatusFeed(storage.events, storage.builds, bus).watch_build("b", 1)
    assert not (await asyncio.wait_for(anext(gen), 5)).build.complete
    await bookkeeping.finish_build(storage.book, build, Result.SUCCESS, "build successful", 3.0)
    bus.publish([Event(kind="build.state", at=2.0, builder="b", build_number=1, id=1),
                 Event(kind="build.finished", at=3.0, builder="b", build_number=1, id=2)])
    kinds = [u.event.kind async for u in gen if u.event is not None]
    assert kinds == ["build.state", "build.finished"]
