"""Following every build of one buildset (a matrix's combinations, a try job on several
builders): one line per build started and finished, then the builds grouped by builder (a
matrix's combinations sort together under its name) and the buildset's result.

Like `BuildFollower`, it reads an `EventPump` started before the buildset was submitted, and
when the stream stays quiet it asks the API (ListBuildRequests) whether the buildset is done,
so a missed event costs a short delay, never a hang."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from clients import fmt
from clients.client import GantryClient
from clients.live import EventSource
from clients.models import Event, Result
from clients.render import event_duration


@dataclass
class BuildLine:
    builder: str
    number: int = 0
    worker: str = ""
    result: Result | None = None
    duration: float | None = None
    state_string: str = ""


@dataclass
class BuildsetState:
    buildset_id: int
    builds: dict[str, BuildLine] = field(default_factory=dict)  # builder -> its latest build
    result: Result | None = None
    done: bool = False


class BuildsetFollower:
    def __init__(
        self, client: GantryClient, events: EventSource, console: Console, buildset_id: int,
        json_mode: bool = False, reconcile_after: float = 3.0,
    ) -> None:
        self._client = client
        self._events = events
        self._console = console
        self._json = json_mode
        self._reconcile_after = reconcile_after
        self.state = BuildsetState(buildset_id)

    async def run(self) -> BuildsetState:
        while not self.state.done:
            event = await self._events.get(self._reconcile_after)
            if event is None:
                await self._reconcile()
            else:
                self._apply(event)
        self._summary()
        return self.state

    def _apply(self, ev: Event) -> None:
        if ev.buildset_id != self.state.buildset_id:
            return
        if ev.kind == "build.started":
            line = self.state.builds[ev.builder] = BuildLine(ev.builder, ev.build_number, ev.worker)
            self._say("build.started", line, Text.assemble(
                "build ", (f"{ev.builder}/{ev.build_number}", "bold"), f" started on {ev.worker}"))
        elif ev.kind == "build.finished":
            line = self.state.builds.setdefault(ev.builder, BuildLine(ev.builder, ev.build_number, ev.worker))
            line.result = ev.result if ev.result is not None else Result.SUCCESS
            line.duration = event_duration(ev)
            line.state_string = str(ev.details.get("state_string", ""))
            self._say("build.finished", line, _line(line))
        elif ev.kind == "buildrequest.cancelled":
            line = self.state.builds.setdefault(ev.builder, BuildLine(ev.builder))
            line.result, line.state_string = Result.CANCELLED, str(ev.details.get("reason", "cancelled"))
            self._say("buildrequest.cancelled", line, _line(line))
        elif ev.kind == "buildset.finished":
            self.state.result, self.state.done = ev.result, True

    async def _reconcile(self) -> None:
        requests = await self._client.list_build_requests(buildset_id=self.state.buildset_id, limit=1000)
        if not requests or not all(r.complete for r in requests):
            return
        result = Result.SUCCESS
        for r in requests:
            line = self.state.builds.setdefault(r.builder, BuildLine(r.builder))
            if line.result is None:
                line.result = r.result
            result = max(result, r.result or Result.SUCCESS, key=_severity)
        self.state.result, self.state.done = result, True

    def _say(self, kind: str, line: BuildLine, text: Text) -> None:
        if self._json:
            print(json.dumps({"event": kind, "buildset_id": self.state.buildset_id, "builder": line.builder,
                              "number": line.number, "worker": line.worker,
                              "result": None if line.result is None else line.result.name,
                              "state_string": line.state_string}), flush=True)
        else:
            self._console.print(text)

    def _summary(self) -> None:
        result = self.state.result or Result.SUCCESS
        if self._json:
            print(json.dumps({"event": "buildset.finished", "buildset_id": self.state.buildset_id,
                              "result": result.name,
                              "builds": {b.builder: None if b.result is None else b.result.name
                                         for b in self.state.builds.values()}}), flush=True)
            return
        self._console.print(Text.assemble(
            fmt.result_mark(result), " ", (f"buildset {self.state.buildset_id}", "bold"), " ",
            fmt.result_text(result)))
        for line in sorted(self.state.builds.values(), key=lambda b: b.builder):
            self._console.print(Text.assemble("  ", _line(line)))


def _line(line: BuildLine) -> Text:
    result = line.result or Result.SUCCESS
    number = f"/{line.number}" if line.number else ""
    return Text.assemble(
        fmt.result_mark(result), " ", (f"{line.builder}{number}", "bold"), " ", fmt.result_text(result),
        (f" in {fmt.format_duration(line.duration)}" if line.duration is not None else "", "dim"),
        (f"  {line.state_string}" if line.state_string else "", "dim"),
    )


# Buildbot's worst-of order (results.worst): what a buildset's result is made of.
_ORDER = [Result.SKIPPED, Result.SUCCESS, Result.WARNINGS, Result.FAILURE, Result.EXCEPTION, Result.RETRY,
          Result.CANCELLED]


def _severity(result: Result) -> int:
    return _ORDER.index(result)
