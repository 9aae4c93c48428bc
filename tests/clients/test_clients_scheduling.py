"""Client side of scheduling: `gantry pending` / `gantry requests` tables, and `gantry watch`
showing a build that waits for a lock and a queue shrinking when requests collapse."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from clients import render
from clients.dashboard import _step_text
from clients.dashboard_state import DashboardState
from clients.models import BuildRequest, Event, PendingRequest, Result

T0 = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def text_of(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_pending_table_shows_the_reason_and_unknown_start() -> None:
    shown = text_of(render.pending_table([
        PendingRequest(7, "b", 3, 5, T0, "waiting for lock deploy"),
        PendingRequest(8, "b", 4, 0, T0, "lower priority than 1 requests", expected_start=T0),
    ]))
    assert "waiting for lock deploy" in shown and "lower priority than 1 requests" in shown
    assert "why pending" in shown and "expected start" in shown


def test_requests_table_names_the_absorbing_request() -> None:
    shown = text_of(render.requests_table([
        BuildRequest(9, 2, "b", complete=True, result=Result.SKIPPED, absorbed_by=8),
        BuildRequest(8, 1, "b", claimed=True),
    ]))
    lines = [ln for ln in shown.splitlines() if ln.strip().startswith(("9", "8"))]
    assert "skipped" in lines[0] and lines[0].rstrip().endswith("8")
    assert "claimed" in lines[1]


def test_dashboard_shows_a_lock_wait_and_collapsed_requests_leave_the_queue() -> None:
    state = DashboardState()
    for i, kind in enumerate(["buildrequest.added"] * 3, start=1):
        state.apply(Event(id=i, kind=kind, builder="b", buildset_id=i))
    state.apply(Event(id=4, kind="build.started", at=T0, builder="b", build_number=1, worker="w1"))
    state.apply(Event(id=5, kind="build.state", builder="b", build_number=1,
                      details={"state_string": "waiting for lock deploy"}))
    [run] = state.running_builds()
    assert _step_text(run).plain == "waiting for lock deploy"
    state.apply(Event(id=6, kind="build.state", builder="b", build_number=1, details={"state_string": "building"}))
    assert run.waiting == ""
    state.apply(Event(id=7, kind="buildrequest.collapsed", builder="b", buildset_id=2,
                      details={"request_id": 2, "absorbed_by": 1}))
    assert state.queued_builders() == [("b", 1)]
