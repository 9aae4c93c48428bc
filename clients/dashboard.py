"""`gantry watch` on a terminal: a live rich dashboard of running builds (current step, elapsed
time, ETA), queued requests, recent results and workers.

`DashboardView` renders a `DashboardState` (see `dashboard_state.py`); `run_dashboard` fills the
state from a snapshot of the API, then keeps it current from the event stream (which resumes by
itself) and re-syncs the queue and the workers now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    RenderableType,
    RenderResult,
)
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from clients import fmt
from clients.client import GantryClient
from clients.dashboard_state import DashboardState, RunningBuild
from clients.errors import GantryError
from clients.live import EventPump

NO_VALUE = "—"
FRAME_SECONDS = 0.25  # elapsed times tick ~4 times a second
RESYNC_SECONDS = 5.0  # queue and workers are re-read this often
SNAPSHOT_BUILDS = 30  # builds read at start (running ones + the recent results)
HISTORY_BUILDS = 20  # builds read per builder to find its last successful ones
TWO_COLUMNS_FROM = 100  # terminal width from which the panels sit side by side


def eta_text(remaining: float | None) -> Text:
    """"~12.0s left", "overdue", or a dash when there is no estimate."""
    if remaining is None:
        return Text(NO_VALUE, style="dim")
    if remaining < 0.5:
        return Text("overdue", style="orange3")
    return Text(f"~{fmt.format_duration(remaining)} left")


def _table(*columns: tuple[str, int] | tuple[str, int, JustifyMethod]) -> Table:
    """Columns as (header, n[, justify]): n > 0 shares the spare width in that ratio, n < 0 is
    a fixed width of -n (right-aligned unless told), so columns stay put between frames."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True, show_edge=False)
    for header, n, *justify in columns:
        if n > 0:
            table.add_column(header, overflow="ellipsis", no_wrap=True, ratio=n)
        else:
            table.add_column(header, overflow="ellipsis", no_wrap=True, width=-n,
                             justify=justify[0] if justify else "right")
    return table


def _step_text(run: RunningBuild) -> Text:
    if run.waiting:
        return Text(run.waiting, style="yellow")
    if not run.step_name:
        return Text("starting", style="dim")
    if run.step_done:
        return Text(run.step_name, style="dim")
    return Text.assemble(("▸ ", fmt.RUNNING_STYLE), run.step_name)


def running_table(state: DashboardState, now: datetime) -> RenderableType:
    runs = state.running_builds()
    if not runs:
        return Text("no builds running", style="dim")
    table = _table(("build", 3), ("worker", 2), ("step", 3), ("elapsed", -8), ("eta", -13))
    for run in runs:
        elapsed = run.elapsed(now)
        table.add_row(
            Text(run.label, style="bold"),
            run.worker or Text(NO_VALUE, style="dim"),
            _step_text(run),
            Text(fmt.format_duration(elapsed) if elapsed is not None else NO_VALUE,
                 style=fmt.RUNNING_STYLE),
            eta_text(state.remaining(run, now)),
        )
    return table


def queued_table(state: DashboardState) -> RenderableType:
    queued = state.queued_builders()
    if not queued:
        return Text("nothing queued", style="dim")
    table = _table(("builder", 1), ("pending", -7))
    for builder, pending in queued:
        table.add_row(builder, str(pending))
    return table


def recent_table(state: DashboardState, now: datetime) -> RenderableType:
    if not state.recent:
        return Text("no finished builds yet", style="dim")
    table = _table(("build", 3), ("result", -9, "left"), ("duration", -8), ("finished", -9), ("state", 3))
    for done in state.recent:
        table.add_row(
            Text.assemble(fmt.result_mark(done.result), " ", done.label),
            fmt.result_text(done.result),
            fmt.format_duration(done.duration) or NO_VALUE,
            Text(fmt.format_ago(done.finished_at, now), style="dim"),
            Text(done.state_string, style="dim"),
        )
    return table


def workers_table(state: DashboardState) -> RenderableType:
    workers = state.shown_workers()
    if not workers:
        return Text("no workers", style="dim")
    table = _table(("worker", 2), ("connected", -9, "left"), ("running", 3))
    table.columns[2].no_wrap = False  # a busy worker's builds wrap onto more lines
    for worker in workers:
        builds = state.worker_builds(worker.name)
        table.add_row(
            worker.name,
            Text("yes", style="green") if worker.connected else Text("no", style="grey58"),
            ", ".join(builds) if builds else Text("idle", style="dim"),
        )
    return table


def _panel(body: RenderableType, title: str) -> Panel:
    return Panel(body, title=title, title_align="left", border_style="grey42", padding=(0, 1))


class DashboardView:
    """The whole dashboard for `state`, as of `clock()`: one column on narrow terminals, two
    side by side (Running and Recent | Queued and Workers) from `TWO_COLUMNS_FROM` columns."""

    def __init__(
        self,
        state: DashboardState,
        address: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.state = state
        self.address = address
        self.clock = clock

    def header(self, now: datetime) -> Text:
        state = self.state
        text = Text.assemble(("gantry watch", "bold"))
        if self.address:
            text.append(f"  {self.address}", style="dim")
        if state.builders:
            text.append(f"  builders: {', '.join(sorted(state.builders))}", style="dim")
        text.append(f"  {fmt.format_clock(now, now)}", style="dim")
        if state.last_event_id:
            text.append(f"  last event #{state.last_event_id}", style="dim")
        if state.problem:
            text.append(f"  {state.problem}", style="bold red")
        text.append("  (Ctrl-C to quit)", style="dim")
        return text

    def panels(self, now: datetime) -> tuple[Panel, Panel, Panel, Panel]:
        state = self.state
        running = len(state.running)
        queued = sum(n for _, n in state.queued_builders())
        return (
            _panel(running_table(state, now), f"Running ({running})"),
            _panel(queued_table(state), f"Queued ({queued})"),
            _panel(recent_table(state, now), "Recent"),
            _panel(workers_table(state), "Workers"),
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = self.clock()
        running, queued, recent, workers = self.panels(now)
        yield self.header(now)
        if options.max_width < TWO_COLUMNS_FROM:
            yield Group(running, queued, recent, workers)
            return
        grid = Table.grid(expand=True, padding=(0, 1))
        grid.add_column(ratio=3)
        grid.add_column(ratio=2)
        grid.add_row(Group(running, recent), Group(queued, workers))
        yield grid


# -- driving it ------------------------------------------------------------------------------


async def load_snapshot(client: GantryClient, state: DashboardState) -> None:
    """Builders (pending requests), recent builds and workers, read at once."""
    builder_names = sorted(state.builders)
    build_lists: list[Coroutine[Any, Any, Any]] = (
        [client.list_builds(b, SNAPSHOT_BUILDS) for b in builder_names]
        if builder_names else [client.list_builds("", SNAPSHOT_BUILDS)]
    )
    builders, workers, *builds = await asyncio.gather(
        client.list_builders(), client.list_workers(), *build_lists
    )
    state.load_builders(builders)
    state.load_builds(b for found in builds for b in found)
    state.load_workers(workers)


class _Fetcher:
    """Background reads that fill in the state (ETAs, current steps, re-syncs); a failure is
    shown in the header and retried later, never fatal."""

    def __init__(self, client: GantryClient, state: DashboardState) -> None:
        self.client = client
        self.state = state
        self._asked_history: set[str] = set()
        self._asked_detail: set[tuple[str, int]] = set()
        # Reads that failed: asked again after the next successful re-sync.
        self._failed_history: set[str] = set()
        self._failed_detail: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._resyncing = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(
        self, read: Callable[[], Coroutine[Any, Any, None]], on_error: Callable[[], None]
    ) -> None:
        # `read` is called here, not by the spawner: a task cancelled before it starts then
        # leaves no coroutine that was never awaited.
        try:
            await read()
        except GantryError as err:
            self.state.problem = str(err)
            on_error()
        except Exception as err:  # a dashboard keeps going; the header says what went wrong
            self.state.problem = f"{type(err).__name__}: {err}"
            on_error()

    def fill_in(self) -> None:
        """Ask for what the state is missing: builders' past durations, builds' details."""
        for builder in self.state.builders_needing_history() - self._asked_history:
            self._asked_history.add(builder)
            self._spawn(self._guard(functools.partial(self._history, builder),
                                    functools.partial(self._failed_history.add, builder)))
        for key in self.state.builds_needing_detail() + self.state.builds_needing_estimate():
            if key not in self._asked_detail:
                self._asked_detail.add(key)
                self._spawn(self._guard(functools.partial(self._detail, *key),
                                        functools.partial(self._failed_detail.add, key)))

    def resync(self) -> None:
        if not self._resyncing:
            self._resyncing = True
            self._spawn(self._guard(self._resync, lambda: None))

    async def _history(self, builder: str) -> None:
        self.state.load_history(builder, await self.client.list_builds(builder, HISTORY_BUILDS))

    async def _detail(self, builder: str, number: int) -> None:
        self.state.load_build(await self.client.get_build(builder, number))

    async def _resync(self) -> None:
        try:
            self.state.load_builders(await self.client.list_builders())
            self.state.load_workers(await self.client.list_workers())
            self.state.problem = ""
            self._asked_history -= self._failed_history
            self._asked_detail -= self._failed_detail
            self._failed_history.clear()
            self._failed_detail.clear()
        finally:
            self._resyncing = False

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _drain(pump: EventPump, state: DashboardState, until: float) -> None:
    """Apply events until the loop's clock reaches `until`."""
    loop = asyncio.get_running_loop()
    while (left := until - loop.time()) > 0:
        event = await pump.get(left)
        if event is None:
            return
        state.apply(event)


async def run_dashboard(
    client: GantryClient,
    console: Console,
    builders: Iterable[str] = (),
    *,
    frames: int | None = None,
) -> int:
    """Show the dashboard until Ctrl-C (or for `frames` frames, for tests)."""
    state = DashboardState.for_builders(builders)
    pump = EventPump(client, state.builders)
    fetcher = _Fetcher(client, state)
    loop = asyncio.get_running_loop()
    try:
        await pump.start()  # subscribe first, so nothing after the snapshot is missed
        await load_snapshot(client, state)
        view = DashboardView(state, client.address)
        # Refreshed from this task only: the state is never read while it changes.
        with Live(view, console=console, auto_refresh=False, redirect_stdout=False,
                  redirect_stderr=False) as live:
            next_resync = loop.time() + RESYNC_SECONDS
            for _ in _frames(frames):
                fetcher.fill_in()
                live.refresh()
                await _drain(pump, state, loop.time() + FRAME_SECONDS)
                if loop.time() >= next_resync:
                    next_resync = loop.time() + RESYNC_SECONDS
                    fetcher.resync()
            fetcher.fill_in()
            live.refresh()
    finally:
        await fetcher.aclose()
        await pump.aclose()
    return 0


def _frames(count: int | None) -> Iterator[int]:
    n = 0
    while count is None or n < count:
        yield n
        n += 1
