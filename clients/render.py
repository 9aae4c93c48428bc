"""Rich renderables for the CLI's human output: tables of builds, workers, builders, changes,
one build in detail, and one line per status event."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from clients import fmt
from clients.models import (
    Artifact,
    Build,
    Builder,
    BuildRequest,
    Change,
    Event,
    Notification,
    PendingRequest,
    Result,
    Scheduler,
    TestReport,
    TestSummary,
    Worker,
)

_KIND_WIDTH = 20  # len("buildrequest.retried")
_DURATION_KEYS = ("duration", "duration_s", "duration_seconds", "elapsed")


WRAP_MIN = 10  # the narrowest a wrapping column gets (unless its header is shorter)


def _table(*columns: str, wrap: Collection[str], title: str | None = None) -> Table:
    """A table whose `wrap` columns (free text, names) absorb a narrow terminal, wrapping
    between words; the others (numbers, times, results) never wrap. Left to itself, rich
    shrinks every column alike, down to "buildse/t" in a header at 80 columns."""
    # Two spaces between columns (padding on the right only): 80 columns fit eight of them.
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, padding=(0, 1, 0, 0))
    for column in columns:
        if column in wrap:
            # A floor, or rich shrinks the one wrapping column to nothing; fold splits only a
            # word wider than the column.
            table.add_column(column, overflow="fold", min_width=min(WRAP_MIN, len(column)))
        else:
            table.add_column(column, no_wrap=True, overflow="ellipsis")
    return table


def _dash(text: str) -> Text:
    return Text(text) if text else Text("-", style="dim")


def builds_table(builds: Sequence[Build]) -> Table:
    table = _table(
        "builder", "#", "result", "worker", "started", "duration", "state", wrap=("builder", "worker", "state")
    )
    table.columns[1].justify = "right"
    table.columns[5].justify = "right"
    for build in builds:
        running = not build.complete
        duration = fmt.elapsed_since(build.started_at) if running else build.duration
        table.add_row(
            build.builder,
            str(build.number),
            fmt.result_text(build.result if build.complete else None),
            _dash(build.worker),
            fmt.format_clock(build.started_at),
            Text(fmt.format_duration(duration), style=fmt.RUNNING_STYLE if running else ""),
            build.state_string,
        )
    return table


def build_detail(build: Build) -> RenderableType:
    """Everything about one build: summary, source stamps, steps, properties, changes."""
    parts: list[RenderableType] = []
    title = Text.assemble(
        (f"{build.builder}/{build.number}", "bold"), "  ",
        fmt.result_text(build.result if build.complete else None), "  ", build.state_string,
    )
    parts.append(title)
    info = Table.grid(padding=(0, 2))
    info.add_column(style="dim")
    info.add_column()
    info.add_row("worker", _dash(build.worker))
    info.add_row("started", f"{fmt.format_clock(build.started_at)}  ({fmt.format_ago(build.started_at)})")
    if build.complete:
        info.add_row("finished", fmt.format_clock(build.finished_at))
        info.add_row("duration", fmt.format_duration(build.duration))
    else:
        info.add_row("running for", fmt.format_duration(fmt.elapsed_since(build.started_at)))
        if build.eta is not None:
            remaining = fmt.format_duration(fmt.until(build.eta))
            info.add_row("eta", f"{fmt.format_clock(build.eta)}  ({remaining} remaining)")
    info.add_row("reason", _dash(build.reason))
    info.add_row("buildset", f"{build.buildset_id}  (request {build.build_request_id})")
    for stamp in build.sourcestamps:
        where = " ".join(x for x in (stamp.codebase, stamp.project) if x)
        label = f"source {where}".strip()
        revision = fmt.short_revision(stamp.revision) or "latest"
        info.add_row(label, f"{stamp.repository or '-'}  {stamp.branch or '(default)'}  {revision}")
    parts.append(info)

    estimated = not build.complete and any(s.expected_duration is not None for s in build.steps)
    columns = ("#", "step", "result", "duration") + (("expected",) if estimated else ()) + ("state", "logs")
    steps = _table(*columns, wrap=("step", "state", "logs"), title="Steps")
    steps.columns[0].justify = "right"
    steps.columns[3].justify = "right"
    for step in build.steps:
        running = step.started_at is not None and not step.complete
        if step.complete:
            result = fmt.result_text(step.result)
        else:
            result = fmt.result_text(None, "running" if running else "pending")
        duration = fmt.elapsed_since(step.started_at) if running else step.duration
        logs = ", ".join(f"{log.name} ({fmt.format_size(log.size)})" for log in step.logs)
        name = Text(step.name, style="dim" if step.hidden else "")
        expected = (fmt.format_duration(step.expected_duration),) if estimated else ()
        steps.add_row(
            str(step.number), name, result, fmt.format_duration(duration), *expected,
            step.state_string, logs,
        )
    parts.append(steps)
    links = [(step.name, url) for step in build.steps for url in step.urls]
    if links:
        link_table = _table("step", "link", "target", wrap=("step", "link", "target"), title="Links")
        for step_name, url in links:
            link_table.add_row(step_name, url.name, url.url)
        parts.append(link_table)

    if build.properties:
        props = _table("property", "value", "source", wrap=("property", "value", "source"), title="Properties")
        for prop in sorted(build.properties, key=lambda p: p.name):
            props.add_row(prop.name, json.dumps(prop.value, ensure_ascii=False), prop.source)
        parts.append(props)
    if build.artifacts:
        parts.append(artifacts_table(build.artifacts, title="Artifacts"))
    if build.changes:
        parts.append(changes_table(build.changes, title="Changes"))
    return Group(*parts)


def artifacts_table(artifacts: Iterable[Artifact], title: str | None = None) -> Table:
    table = _table("name", "size", "step", "sha256", "stored", wrap=("name", "step", "sha256"), title=title)
    table.columns[1].justify = "right"
    for a in artifacts:
        table.add_row(a.name, fmt.format_size(a.size), a.step, a.sha256, fmt.format_clock(a.created_at))
    return table


_OUTCOME_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "dim"}


def _outcome(outcome: str) -> Text:
    return Text(outcome, style=_OUTCOME_STYLE.get(outcome, ""))


def _trend(summary: TestSummary) -> str:
    """The latest duration against the mean of the runs before: "+35%" slower, "-10%" faster."""
    now, before = summary.latest.duration, summary.mean_duration
    if now is None or not before:
        return "-"
    return f"{(now - before) / before:+.0%}"


def tests_table(report: TestReport, view: str) -> Table:
    """`gantry tests`: one row per test (or per run of one test for the history view)."""
    if view == "history":
        table = _table("build", "outcome", "time", "revision", "message", wrap={"message"})
        table.columns[0].justify = "right"
        for run in report.runs:
            table.add_row(str(run.build_number), _outcome(run.outcome), fmt.format_duration(run.duration),
                          fmt.short_revision(run.revision) or "-", _dash(fmt.first_line(run.message)))
        return table
    if view == "slowest":
        table = _table("test", "time", "mean before", "trend", "runs", wrap={"test"})
        for t in report.tests:
            table.add_row(t.latest.name, fmt.format_duration(t.latest.duration),
                          fmt.format_duration(t.mean_duration) if t.mean_duration is not None else "-",
                          _trend(t), str(t.runs))
        return table
    if view == "flaky":
        table = _table("test", "flips", "failed", "last", "message", wrap={"test", "message"})
        for t in report.tests:
            table.add_row(t.latest.name, str(t.flips), f"{t.failures}/{t.runs}", _outcome(t.latest.outcome),
                          _dash(fmt.first_line(t.latest.message)))
        return table
    table = _table("test", "since", "failed", "message", wrap={"test", "message"})
    for t in report.tests:
        since = f"#{t.failing_since}" + (" (new)" if t.newly_failing else "")
        table.add_row(t.latest.name, since, f"{t.failures}/{t.runs}", _dash(fmt.first_line(t.latest.message)))
    return table


def changes_table(changes: Iterable[Change], title: str | None = None) -> Table:
    table = _table(
        "id", "when", "author", "branch", "revision", "comments",
        wrap=("author", "branch", "revision", "comments"), title=title,
    )
    table.columns[0].justify = "right"
    for change in changes:
        table.add_row(
            str(change.id),
            fmt.format_clock(change.when),
            change.author,
            change.branch,
            fmt.short_revision(change.revision),
            fmt.first_line(change.comments),
        )
    return table


def workers_table(workers: Iterable[Worker]) -> Table:
    table = _table(
        "worker", "connected", "since", "running", "max builds", "os/arch",
        wrap=("worker", "connected", "running", "max builds"),
    )
    table.columns[4].justify = "right"
    for worker in workers:
        connected = Text("yes", style="green") if worker.connected else Text("no", style="grey58")
        if worker.state != "active":  # an operator's hold, or an agent draining: say so, and why
            why = f": {worker.state_reason}" if worker.state_reason else ""
            connected.append(f", {worker.state}{why}", style="yellow")
        platform = "/".join(x for x in (worker.info.get("os"), worker.info.get("arch")) if x)
        table.add_row(
            worker.name,
            connected,
            fmt.format_ago(worker.since),
            ", ".join(worker.running_builds) or Text("-", style="dim"),
            _capacity(worker),
            _dash(platform),
        )
    return table


def _capacity(worker: Worker) -> str:
    """The effective capacity and why, e.g. "4 (config)", "2 (agent --max-builds; config 4)"."""
    reason = f" ({worker.capacity_reason})" if worker.capacity_reason else ""
    return f"{worker.max_builds}{reason}"


def schedulers_table(schedulers: Iterable[Scheduler]) -> Table:
    table = _table("scheduler", "kind", "enabled", "next fire", "builders", wrap=("scheduler", "kind", "builders"))
    for s in schedulers:
        table.add_row(
            s.name,
            s.kind,
            Text("yes", style="green") if s.enabled else Text("no", style="red"),
            _dash(fmt.format_clock(s.next_fire)),
            ", ".join(s.builders),
        )
    return table


_NOTIFICATION_STYLES = {"sent": "green", "pending": "yellow", "failed": "red"}


def notifications_table(notifications: Iterable[Notification]) -> Table:
    table = _table(
        "id", "notifier", "state", "attempts", "summary", "last error", wrap=("notifier", "summary", "last error")
    )
    table.columns[3].justify = "right"
    for n in notifications:
        table.add_row(
            str(n.id),
            n.notifier,
            Text(n.state, style=_NOTIFICATION_STYLES.get(n.state, "")),
            str(n.attempts),
            n.summary,
            _dash(n.last_error),
        )
    return table


def pending_table(pending: Iterable[PendingRequest]) -> Table:
    table = _table(
        "request", "builder", "buildset", "priority", "submitted", "why pending", "expected start",
        wrap=("builder", "why pending"),
    )
    for column in (0, 2, 3):
        table.columns[column].justify = "right"
    for p in pending:
        table.add_row(
            str(p.id), p.builder, str(p.buildset_id), str(p.priority),
            fmt.format_ago(p.submitted_at), Text(p.reason, style="yellow"),
            fmt.format_clock(p.expected_start) if p.expected_start else Text("-", style="dim"),
        )
    return table


def requests_table(requests: Iterable[BuildRequest]) -> Table:
    table = _table(
        "request", "builder", "buildset", "priority", "submitted", "state", "result", "absorbed by", wrap=("builder",)
    )
    for column in (0, 2, 3, 7):
        table.columns[column].justify = "right"
    for r in requests:
        state = "complete" if r.complete else ("claimed" if r.claimed else "pending")
        table.add_row(
            str(r.id), r.builder, str(r.buildset_id), str(r.priority), fmt.format_ago(r.submitted_at),
            state, fmt.result_text(r.result) if r.complete else Text("-", style="dim"),
            str(r.absorbed_by) if r.absorbed_by else Text("-", style="dim"),
        )
    return table


def builders_table(builders: Iterable[Builder]) -> Table:
    table = _table(
        "builder", "workers", "steps", "pending", "next start", "tags", "description",
        wrap=("builder", "workers", "tags", "description"),
    )
    table.columns[3].justify = "right"
    for builder in builders:
        start = builder.next_expected_start
        table.add_row(
            builder.name,
            ", ".join(builder.workers),
            str(len(builder.steps)),
            str(builder.pending_requests),
            _dash(f"in ~{fmt.format_duration(fmt.until(start))}" if start is not None else ""),
            ", ".join(builder.tags),
            builder.description,
        )
    return table


def event_duration(event: Event) -> float | None:
    for key in _DURATION_KEYS:
        value = event.details.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


def _result_suffix(result: Result | None, event: Event) -> Text:
    text = Text()
    if result is not None:
        text.append(" ")
        text.append_text(fmt.result_text(result))
    duration = fmt.format_duration(event_duration(event))
    if duration:
        text.append(f" in {duration}", style="dim")
    return text


def event_subject(event: Event) -> Text:
    """What an event is about, e.g. "runtests/7 on worker-1"."""
    d = event.details
    build = f"{event.builder}/{event.build_number}" if event.build_number else event.builder
    kind = event.kind
    if kind == "change.added":
        change_id = d.get("change_id") or d.get("id") or ""
        bits = [f"change {change_id}".strip()]
        bits += [str(d[k]) for k in ("author", "branch") if d.get(k)]
        if d.get("revision"):
            bits.append(fmt.short_revision(str(d["revision"])))
        return Text("  ".join(bits))
    if kind == "buildset.added":
        text = Text(f"buildset {event.buildset_id}")
        builders = d.get("builders") or []
        if builders:
            text.append(" for " + ", ".join(map(str, builders)))
        if d.get("reason"):
            text.append(f"  ({d['reason']})", style="dim")
        return text
    if kind in ("buildrequest.added", "buildrequest.retried"):
        request = event.details.get("request_id")
        label = f"{event.builder} request {request}" if request else event.builder
        return Text(f"{label} (buildset {event.buildset_id})")
    if kind == "build.started":
        return Text(f"{build} on {event.worker}" if event.worker else build)
    if kind == "step.started":
        return Text(f"{build} {event.step_name}")
    if kind == "step.finished":
        return Text(f"{build} {event.step_name}") + _result_suffix(event.result, event)
    if kind == "build.finished":
        text = Text(build) + _result_suffix(event.result, event)
        if d.get("state_string"):
            text.append(f"  {d['state_string']}", style="dim")
        return text
    if kind == "buildset.finished":
        return Text(f"buildset {event.buildset_id}") + _result_suffix(event.result, event)
    if kind == "worker.state":  # paused / draining / active, and why
        state, why = event.details.get("state", ""), event.details.get("reason", "")
        return Text(f"{event.worker} {state}" + (f": {why}" if why else ""))
    if kind.startswith("worker."):
        return Text(event.worker)
    return Text(" ".join(x for x in (build, event.worker) if x))


_KIND_STYLES = {"started": "cyan", "added": "blue", "connected": "green", "disconnected": "grey58"}


def event_line(event: Event) -> Text:
    """One pleasant line: "#123 18:02:11 build.started        runtests/7 on worker-1"."""
    suffix = event.kind.rsplit(".", 1)[-1]
    style = _KIND_STYLES.get(suffix, "")
    if event.kind.endswith(".finished") and event.result is not None:
        style = fmt.RESULT_STYLES[event.result].replace("bold ", "")
    return Text.assemble(
        (f"#{event.id}", "dim"), " ",
        fmt.format_clock(event.at), " ",
        (event.kind.ljust(_KIND_WIDTH), style), " ",
        event_subject(event),
    )


def force_form(builder: Builder) -> RenderableType:
    """What `gantry force BUILDER` takes: the ForceScheduler's parameters and codebases."""
    if not builder.force_scheduler:
        return Text(f"builder {builder.name} has no ForceScheduler: it cannot be forced")
    parts: list[RenderableType] = [Text.assemble("forced through ", (builder.force_scheduler, "bold"))]
    if builder.force_parameters:
        table = _table(
            "parameter (--property)", "type", "default", "required", "allowed",
            wrap=("parameter (--property)", "type", "default", "allowed"), title="Parameters",
        )
        for p in builder.force_parameters:
            allowed = ", ".join(p.choices) if p.choices else (f"matches {p.regex}" if p.regex else "")
            kind = f"{p.type} (several)" if p.multiple else p.type
            table.add_row(p.name, kind, json.dumps(p.default), "yes" if p.required else "", allowed)
        parts.append(table)
    else:
        parts.append(Text("any --property NAME=VALUE is accepted"))
    if builder.force_codebases:
        table = _table(
            "codebase (--codebase)", "repository", "branch", "revision",
            wrap=("codebase (--codebase)", "repository", "branch", "revision"), title="Codebases",
        )
        for s in builder.force_codebases:
            table.add_row(s.codebase or "''", _dash(s.repository), _dash(s.branch), _dash(s.revision))
        parts.append(table)
    return Group(*parts)
