"""Tables at 80 columns: headers and short values (numbers, times, results) are never split
mid-word; the free-text columns wrap between words instead."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console, RenderableType

from clients import render
from clients.models import Build, Builder, BuildRequest, PendingRequest, Result, Worker

NOW = datetime.now(UTC)


def text_at(width: int, table: RenderableType) -> str:
    console = Console(width=width, record=True, force_terminal=False)
    console.print(table)
    return console.export_text()


def words(text: str) -> set[str]:
    return set(text.split())


def test_requests_keep_headers_and_numbers_whole_at_80_columns() -> None:
    table = render.requests_table(
        [
            BuildRequest(12345, 678, "integration-tests-linux", 10, NOW, True, True, Result.SUCCESS, 12),
        ]
    )
    out = words(text_at(80, table))
    assert {"request", "buildset", "priority", "submitted", "absorbed", "12345", "678", "complete", "success"} <= out


def test_pending_wraps_the_reason_between_words() -> None:
    reason = "no worker connected (of linux-1, linux-2)"
    table = render.pending_table([PendingRequest(12, "integration-tests", 34, 0, NOW, reason, None)])
    out = text_at(80, table)
    assert {"buildset", "priority", "submitted", "expected", "start"} <= words(out)
    assert set(reason.split()) <= words(out)  # wrapped at spaces, no word cut


def test_builds_and_builders_and_workers() -> None:
    state = "failed integration tests of the whole thing on linux"
    build = Build(
        1,
        "integration-tests-linux",
        1234,
        worker="linux-worker-1",
        started_at=NOW,
        finished_at=NOW,
        complete=True,
        result=Result.FAILURE,
        state_string=state,
    )
    out = text_at(80, render.builds_table([build]))
    assert {"builder", "result", "worker", "started", "duration", "1234", "failure"} <= words(out)
    assert set(state.split()) <= words(out)
    builder = Builder(
        "integration-tests-linux",
        ("linux-1", "linux-2"),
        ("checkout", "compile", "test"),
        3,
        "runs the integration tests on every push to main",
        ("nightly", "linux"),
        NOW,
    )
    out = text_at(80, render.builders_table([builder]))
    assert {"builder", "workers", "steps", "pending", "next", "start", "tags", "description"} <= words(out)
    worker = Worker(
        "linux-worker-1",
        True,
        NOW,
        ("b/1", "b/2"),
        2,
        {"os": "linux", "arch": "x86_64"},
        "agent --max-builds; config 4",
    )
    out = text_at(80, render.workers_table([worker]))
    assert {"worker", "connected", "since", "running", "max", "builds", "linux/x86_64", "--max-builds;"} <= words(out)


def test_a_worker_state_event_says_what_and_why() -> None:
    from clients.models import Event

    line = render.event_line(
        Event(id=7, kind="worker.state", worker="w1", details={"state": "paused", "reason": "disk full"})
    )
    assert "w1 paused: disk full" in line.plain
