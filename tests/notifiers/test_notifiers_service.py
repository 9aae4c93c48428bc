"""The notification service on real storage (memory, SQLite, PostgreSQL): builds run through
storage publish the real events; mails go to a real SMTP server. Decisions per builder history,
filters, a down SMTP server (builds unaffected, the mail arrives once when it is back), restarts,
give-up after max_attempts, and exactly-once queueing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from coordinator.domain.results import Result
from notifiers.base import Notifier
from notifiers.mail import MailNotifier
from notifiers.service import NotificationService
from tests.net import port_of, reserved_port
from tests.notifiers.conftest import TIMEOUT, SmtpServer, Store, eventually, run_build

FAST = dict(retry_base=0.05, retry_cap=0.2, poll_interval=0.05)


@pytest.fixture
async def services() -> AsyncIterator[Callable[..., NotificationService]]:
    made: list[NotificationService] = []

    def make(store: Store, notifiers: list[Notifier], **kw: Any) -> NotificationService:
        svc = NotificationService(
            builds=store.db.builds, logs=store.db.logs, events=store.db.events, outbox=store.db.outbox,
            bus=store.bus, notifiers=notifiers, **{**FAST, **kw})
        made.append(svc)
        return svc

    yield make
    for svc in made:
        await svc.aclose()


def mailer(port: int, **kw: Any) -> MailNotifier:
    return MailNotifier("ci@example.org", relayhost="127.0.0.1", smtpPort=port, timeout=5, **kw)


async def settled(svc: NotificationService, store: Store) -> None:
    """The service has looked at every stored event."""
    last = await store.db.events.last_event_id()
    await eventually(lambda: svc.cursor >= last, what="events handled")


async def test_failing_build_mails_its_author_with_the_log_tail(
    store: Store, smtp_servers: Callable[..., SmtpServer], services: Callable[..., NotificationService]
) -> None:
    server = smtp_servers()
    svc = services(store, [mailer(server.port, mode=("failing",), extraRecipients=["ci-list@example.org"])],
                   url="https://ci.example.org/")
    await svc.start()
    log = "".join(f"output line {i}\n" for i in range(100)) + "E   assert 1 == 2\n"
    await run_build(store.db, "runtests", Result.FAILURE, log_text=log)
    (got,) = await eventually(server.messages, what="the mail")
    assert got.recipients == ["ci-list@example.org", "jane@example.org"]
    assert got.message["Subject"] == "Gantry: failure in runtests #1"
    text = got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Failing step: test" in text and "E   assert 1 == 2" in text
    lines = text.splitlines()
    assert "output line 81" in lines and "output line 80" not in lines  # the last 20 lines
    assert "https://ci.example.org/builders/runtests/builds/1" in text
    assert "fix the frobnicator" in text
    async def sent() -> list[Any]:
        return await store.db.outbox.list_notifications(10, "sent")

    (n,) = await eventually(sent, what="marked sent")
    assert (n.state, n.attempts, n.kind, n.key) == ("sent", 1, "mail", "MailNotifier:runtests:1:build.finished")
    assert n.sent_at is not None


async def test_modes_follow_each_builders_history_and_filters(
    store: Store, smtp_servers: Callable[..., SmtpServer], services: Callable[..., NotificationService]
) -> None:
    server = smtp_servers()
    svc = services(store, [
        mailer(server.port, mode="problem", name="problem", extraRecipients=["p@x.org"],
               sendToInterestedUsers=False),
        mailer(server.port, mode="change", name="change", extraRecipients=["c@x.org"],
               sendToInterestedUsers=False, builders=["a"]),
        mailer(server.port, mode="all", name="tagged", extraRecipients=["t@x.org"],
               sendToInterestedUsers=False, tags=["release"]),
    ], builder_tags={"b": ["release"]})
    await svc.start()
    S, F = Result.SUCCESS, Result.FAILURE
    for builder, result in [("a", S), ("b", F), ("a", F), ("a", F), ("b", F), ("a", S), ("b", S)]:
        await run_build(store.db, builder, result)
    await settled(svc, store)
    expected = sorted([
        ("p@x.org", "Gantry: failure in b #1"),  # first build of b fails: a problem
        ("p@x.org", "Gantry: failure in a #2"),  # a: success, then failure
        ("c@x.org", "Gantry: failure in a #2"),  # a changed S -> F (a #1 has no previous)
        ("c@x.org", "Gantry: success in a #4"),  # a changed F -> S; b is not in its builders
        ("t@x.org", "Gantry: failure in b #1"),  # b is tagged "release": every build
        ("t@x.org", "Gantry: failure in b #2"),
        ("t@x.org", "Gantry: success in b #3"),
    ])
    await eventually(lambda: len(server.messages()) >= len(expected), what="the mails")
    async def all_sent() -> bool:
        return all(n.state == "sent" for n in await store.db.outbox.list_notifications(100))

    await eventually(all_sent, what="all sent")
    got = sorted((m.recipients[0], m.message["Subject"]) for m in server.messages())
    assert got == expected


async def test_a_down_smtp_server_never_holds_builds_and_the_mail_arrives_once_it_is_back(
    store: Store, smtp_servers: Callable[..., SmtpServer], services: Callable[..., NotificationService],
    reserved: socket.socket,
) -> None:
    port = port_of(reserved)  # nothing listens here yet
    svc = services(store, [mailer(port, mode="all")])
    await svc.start()
    await run_build(store.db, "runtests", Result.SUCCESS)

    async def first_failed() -> bool:
        ns = await store.db.outbox.list_notifications(10)
        return len(ns) == 1 and ns[0].state == "pending" and ns[0].attempts >= 1

    await eventually(first_failed, what="a failed delivery")
    # Builds go on at their own pace while that mail waits for its server: the next ones
    # finish (a deadlock would hit the timeout) with it still undelivered.
    async with asyncio.timeout(TIMEOUT):
        for _ in range(2):
            await run_build(store.db, "runtests", Result.SUCCESS)
    assert await store.db.outbox.list_notifications(10, "sent") == []

    async def retried() -> bool:
        ns = await store.db.outbox.list_notifications(10)
        return len(ns) == 3 and all(n.state == "pending" and n.attempts >= 2 for n in ns)

    await eventually(retried, what="retries while the server is down")
    for n in await store.db.outbox.list_notifications(10):
        assert "SMTP 127.0.0.1" in n.last_error and n.sent_at is None
    assert await store.db.outbox.list_notifications(10, "sent") == []

    server = smtp_servers(reserved)
    await eventually(lambda: len(server.messages()) == 3, what="3 mails after the server is back")

    async def all_sent() -> bool:
        return [n.state for n in await store.db.outbox.list_notifications(10)] == ["sent"] * 3

    await eventually(all_sent, what="marked sent")
    # Nothing is sent twice: more retry rounds pass, still 3 mails, one per build.
    await run_build(store.db, "runtests", Result.SUCCESS)
    await eventually(lambda: len(server.messages()) == 4, what="the next mail")
    subjects = sorted(m.message["Subject"] for m in server.messages())
    assert subjects == [f"Gantry: success in runtests #{i}" for i in (1, 2, 3, 4)]


async def test_a_message_that_finally_fails_is_failed_with_its_reason(
    store: Store, services: Callable[..., NotificationService], caplog: pytest.LogCaptureFixture
) -> None:
    with reserved_port() as nobody:
        svc = services(store, [mailer(nobody, mode="all")], max_attempts=3)
        await svc.start()
        await run_build(store.db, "runtests", Result.FAILURE)

        async def failed() -> list[Any]:
            return await store.db.outbox.list_notifications(10, "failed")

        (n,) = await eventually(failed, what="given up")
    assert n.attempts == 3 and "SMTP 127.0.0.1" in n.last_error
    assert "failed for good after 3 attempt(s)" in caplog.text
    assert svc.backoff(1) == 0.05 and svc.backoff(2) == 0.1 and svc.backoff(10) == 0.2


async def test_restart_resumes_pending_and_missed_events_without_duplicates(
    store: Store, smtp_servers: Callable[..., SmtpServer], services: Callable[..., NotificationService],
    reserved: socket.socket,
) -> None:
    port = port_of(reserved)
    first = services(store, [mailer(port, mode="all")])
    await first.start()
    await run_build(store.db, "runtests", Result.SUCCESS)  # queued, server down
    await settled(first, store)
    assert len(await store.db.outbox.list_notifications(10, "pending")) == 1
    await first.aclose()
    await run_build(store.db, "runtests", Result.FAILURE)  # while no service runs

    server = smtp_servers(reserved)
    second = services(store, [mailer(port, mode="all")], lease=0.0)
    await second.start()
    await eventually(lambda: len(server.messages()) == 2, what="both mails")
    # Reading the same events again (e.g. a crash before the cursor was saved) queues nothing.
    second.cursor = 0
    await second.catch_up()
    assert len(await store.db.outbox.list_notifications(10)) == 2
    assert sorted(m.message["Subject"] for m in server.messages()) == [
        "Gantry: failure in runtests #2", "Gantry: success in runtests #1"]


async def test_the_publisher_is_never_blocked(store: Store, services: Callable[..., NotificationService]) -> None:
    delivering = asyncio.Event()

    class Slow(MailNotifier):
        async def deliver(self, payload: dict[str, Any]) -> None:
            delivering.set()
            await asyncio.sleep(3600)  # a server that never answers

    svc = services(store, [Slow("ci@example.org", mode="all")], close_grace=0.1)
    await svc.start()
    await run_build(store.db, "slow", Result.SUCCESS)
    async with asyncio.timeout(TIMEOUT):
        await delivering.wait()
    # While that delivery hangs, builds still finish (a blocked publisher would hit the timeout).
    async with asyncio.timeout(TIMEOUT):
        for _ in range(4):
            await run_build(store.db, "slow", Result.SUCCESS)
