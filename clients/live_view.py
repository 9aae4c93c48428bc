"""Displays for a followed build: a live rich view for terminals, plain lines otherwise, and
JSON lines for `--json`."""

from __future__ import annotations

import json
import time
from datetime import datetime
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from clients import fmt
from clients.live import WORKER_AWAY, BuildState, StepState
from clients.models import Result


def _final_result_line(state: BuildState) -> Text:
    result = state.result or Result.SUCCESS
    label = f"build {state.builder}/{state.number}" if state.builder else "buildset"
    text = Text.assemble(fmt.result_mark(result), " ", (label, "bold"), " ", fmt.result_text(result))
    if state.duration is not None:
        text.append(f" in {fmt.format_duration(state.duration)}", style="dim")
    if state.state_string:
        text.append(f"  {state.state_string}", style="dim")
    return text


def _step_line(step: StepState) -> Text:
    result = step.result or Result.SUCCESS
    return Text.assemble(
        "  ", fmt.result_mark(result), " ", step.name.ljust(20), " ", fmt.result_text(result),
        (f"  {fmt.format_duration(step.duration)}" if step.duration is not None else "", "dim"),
        (f"  {step.state_string}" if step.state_string else "", "dim"),
    )


class LineDisplay:
    """One line per transition; for logs, pipes and dumb terminals."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def note(self, kind: str, state: BuildState, step: StepState | None = None) -> None:
        print_ = self.console.print
        if kind == "buildset":
            print_(f"buildset {state.buildset_id} created; waiting for a worker")
        elif kind == "build.started":
            worker = f" on {state.worker}" if state.worker else ""
            print_(Text.assemble("build ", (f"{state.builder}/{state.number}", "bold"), f" started{worker}"))
        elif kind == "step.started" and step is not None:
            print_(Text.assemble("  ", ("▸", "cyan"), f" {step.name}"))
        elif kind == "step.urls" and step is not None:
            name, url = step.urls[-1]
            print_(Text(f"    ↳ {name}: {url}", style="dim"), no_wrap=True, overflow="ellipsis")
        elif kind == "step.finished" and step is not None:
            print_(_step_line(step), no_wrap=True, overflow="ellipsis")
        elif kind == "step.waiting" and step is not None:
            print_(Text(f"    ⏸ {step.name}: {step.state_string}", style="yellow"), no_wrap=True, overflow="ellipsis")
        elif kind == "step.resumed" and step is not None:
            print_(Text(f"    ▸ {step.name}: worker back, step continues", style="dim"))
        elif kind == "build.retry":
            print_(Text(f"build {state.builder}/{state.number} lost its worker; it will be retried", style="grey58"))
        elif kind in ("build.finished", "buildset.finished"):
            print_(_final_result_line(state))


class LiveDisplay:
    """A live view: each step appears with a spinner and its elapsed time when it starts, and
    gets its coloured result and duration when it finishes."""

    def __init__(self, console: Console, waiting: str = "waiting for the build to start") -> None:
        self.console = console
        self.waiting = waiting
        self._state: BuildState | None = None
        self._spinners: dict[object, Spinner] = {}
        self._seen_at: dict[object, float] = {}
        self._live = Live(self, console=console, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveDisplay:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    def note(self, kind: str, state: BuildState, step: StepState | None = None) -> None:
        self._state = state
        if kind == "build.retry":
            self.console.print(
                Text(f"build {state.builder}/{state.number} lost its worker; it will be retried",
                     style="grey58")
            )
        elif kind == "buildset":
            self.waiting = f"buildset {state.buildset_id}: waiting for a worker"
        self._live.refresh()

    def _spinner(self, key: object) -> Spinner:
        # One Spinner per row: a fresh one each frame would never animate.
        if key not in self._spinners:
            self._spinners[key] = Spinner("dots", style="cyan")
            self._seen_at[key] = time.monotonic()
        return self._spinners[key]

    def _elapsed(self, key: object, started: datetime | None) -> str:
        if started is not None:
            return fmt.format_duration(fmt.elapsed_since(started))
        return fmt.format_duration(time.monotonic() - self._seen_at[key])

    def __rich__(self) -> RenderableType:
        state = self._state
        if state is None or (not state.builder and not state.done):
            return self._grid(self._spinner("wait"), Text(f" {self.waiting}"))
        rows: list[RenderableType] = []
        if state.done:
            rows.append(_final_result_line(state))
        else:
            key: tuple[object, ...] = ("build", state.builder, state.number)
            spinner = self._spinner(key)
            worker = f" on {state.worker}" if state.worker else ""
            head = Text.assemble(" ", ("build ", ""), (f"{state.builder}/{state.number}", "bold"),
                                 worker, "  ", (self._elapsed(key, state.started_at), "dim"))
            rows.append(self._grid(spinner, head))
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column(min_width=20)
        table.add_column()
        table.add_column(justify="right")
        table.add_column()
        for number in sorted(state.steps):
            step = state.steps[number]
            if step.result is None:
                key = ("step", state.builder, state.number, number)
                away = step.state_string.startswith(WORKER_AWAY)
                table.add_row(
                    self._spinner(key), step.name,
                    Text(step.state_string, style="yellow") if away else Text("running", style=fmt.RUNNING_STYLE),
                    Text(self._elapsed(key, step.started_at), style="dim"), "",
                )
            else:
                table.add_row(
                    fmt.result_mark(step.result), step.name, fmt.result_text(step.result),
                    Text(fmt.format_duration(step.duration), style="dim"),
                    Text(step.state_string, style="dim"),
                )
            for name, url in step.urls:
                table.add_row("", Text(f"↳ {name}", style="dim"), Text(url, style="dim"), "", "")
        rows.append(table)
        return Group(*rows)

    @staticmethod
    def _grid(*cells: RenderableType) -> Table:
        grid = Table.grid()
        for _ in cells:
            grid.add_column()
        grid.add_row(*cells)
        return grid


class JsonDisplay:
    """One JSON object per transition (for `--json`)."""

    def __enter__(self) -> JsonDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def note(self, kind: str, state: BuildState, step: StepState | None = None) -> None:
        record: dict[str, object] = {
            "event": kind,
            "buildset_id": state.buildset_id,
            "builder": state.builder or None,
            "number": state.number or None,
        }
        if step is not None:
            step_record: dict[str, object] = {"number": step.number, "name": step.name}
            if step.result is not None:
                step_record.update(
                    result=step.result.name, duration=step.duration, state_string=step.state_string
                )
            elif kind in ("step.waiting", "step.resumed"):
                step_record["state_string"] = step.state_string
            if step.urls:
                step_record["urls"] = [{"name": n, "url": u} for n, u in step.urls]
            record["step"] = step_record
        if kind == "build.started":
            record["worker"] = state.worker
        if kind in ("build.finished", "buildset.finished", "build.retry") and state.result is not None:
            record.update(result=state.result.name, duration=state.duration, state_string=state.state_string)
        print(json.dumps(record), flush=True)


def make_display(console: Console, json_mode: bool, waiting: str) -> LineDisplay | LiveDisplay | JsonDisplay:
    """The right display for this output: JSON lines, a live view on a terminal, else lines."""
    if json_mode:
        return JsonDisplay()
    if console.is_terminal and not console.is_dumb_terminal:
        return LiveDisplay(console, waiting)
    return LineDisplay(console)

