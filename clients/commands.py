"""The client subcommands of `gantry`: each takes the parsed arguments and returns an exit code.

Human output goes through rich (see `render.py`); `--json` prints one JSON document, or one
JSON object per line for streams.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from clients import fmt, render
from clients.buildset_follow import BuildsetFollower
from clients.client import GantryClient
from clients.connection import resolve
from clients.convert import to_jsonable
from clients.errors import FailedPrecondition, LocalError
from clients.live import BuildFollower, EventPump, Target
from clients.live_view import make_display
from clients.log_times import LineStamper
from clients.models import Artifact, Change, Channel, ForceResult, LogChunk


def _console() -> Console:
    return Console(highlight=False)


def _emit_json(value: Any) -> None:
    print(json.dumps(to_jsonable(value), ensure_ascii=False), flush=True)


def _client(args: argparse.Namespace) -> GantryClient:
    flags = {k: getattr(args, k, "") for k in ("token", "tls_ca", "tls_cert", "tls_key", "tls")}
    conn = resolve({**flags, "coordinator": args.coordinator}, default_address=args.coordinator)
    return GantryClient(conn.address, token=conn.token, tls=conn.tls)


def _read_comments(args: argparse.Namespace) -> str:
    if not args.comments_file:
        return str(args.comments)
    try:
        if args.comments_file == "-":
            return sys.stdin.read()
        return Path(args.comments_file).read_text(encoding="utf-8")
    except OSError as err:
        raise LocalError(f"cannot read the comments: {err}") from None


async def cmd_sendchange(args: argparse.Namespace) -> int:
    change = Change(
        author=args.author,
        repository=args.repository,
        branch=args.branch,
        revision=args.revision,
        comments=_read_comments(args),
        committer=args.committer,
        files=tuple(args.files),
        project=args.project,
        codebase=args.codebase,
        category=args.category,
        when=datetime.fromtimestamp(args.when, UTC) if args.when is not None else None,
        properties=dict(args.property),
        revlink=args.revlink,
    )
    async with _client(args) as client:
        ids = await client.submit_changes([change], idempotency_key=args.idempotency_key)
    if args.json:
        _emit_json({"change_ids": ids})
    else:
        for change_id in ids:
            print(f"change {change_id} submitted")
    return 0


def _default_owner() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment: leave the owner empty
        return ""


async def cmd_force(args: argparse.Namespace) -> int:
    if args.parameters:
        async with _client(args) as client:
            builder = await client.get_builder(args.builder)
        if args.json:
            _emit_json(builder)
        else:
            _console().print(render.force_form(builder))
        return 0
    codebases: dict[str, dict[str, str]] = {}
    for codebase, field, value in args.codebase:
        codebases.setdefault(codebase, {})[field] = value

    async def force(client: GantryClient) -> ForceResult:
        return await client.force_build(
            args.builder,
            branch=args.branch,
            revision=args.revision,
            repository=args.repository,
            reason=args.reason,
            properties=dict(args.property),
            owner=args.owner or _default_owner(),
            project=args.project,
            priority=args.priority,
            codebases=codebases,
            scheduler=args.scheduler,
        )

    return await _submit_and_wait(args, "forced", force)


async def cmd_rebuild(args: argparse.Namespace) -> int:
    async def rebuild(client: GantryClient) -> ForceResult:
        return await client.rebuild_build(args.builder, args.number)

    return await _submit_and_wait(args, "rebuilt", rebuild)


async def _submit_and_wait(
    args: argparse.Namespace, verb: str, submit: Callable[[GantryClient], Awaitable[ForceResult]]
) -> int:
    """Submit a buildset for `args.builder`, print it, and with `--wait` follow its build:
    exit 0 on SUCCESS/WARNINGS, 1 otherwise."""
    console = _console()
    async with _client(args) as client:
        # A matrix builder's buildset has a build per combination (named BUILDER@...): follow them all.
        group = args.wait and await _is_matrix(client, args.builder)
        pump = EventPump(client, builders=() if group else [args.builder]) if args.wait else None
        try:
            if pump is not None:
                await pump.start()  # subscribe first, so no event of the build is missed
            submitted = await submit(client)
            if args.json:
                _emit_json({"event": verb, **submitted._asdict()} if pump else submitted)
            else:
                console.print(
                    f"{verb} [bold]{args.builder}[/]: buildset {submitted.buildset_id} "
                    f"(request {submitted.build_request_id})"
                )
            if pump is None:
                return 0
            if group:
                done = await BuildsetFollower(client, pump, console, submitted.buildset_id, args.json).run()
                return 0 if fmt.is_good(done.result) else 1
            target = Target(buildset_id=submitted.buildset_id, builders=(args.builder,))
            display = make_display(console, args.json, f"waiting for a worker to run {args.builder}")
            with display:
                state = await BuildFollower(client, pump, display, target).run()
            return 0 if fmt.is_good(state.result) else 1
        finally:
            if pump is not None:
                await pump.aclose()


async def _is_matrix(client: GantryClient, builder: str) -> bool:
    return bool(await _combinations(client, builder))


async def _combinations(client: GantryClient, builder: str) -> list[str]:
    """The builders of a matrix builder's combinations (named BUILDER@...); [] for another."""
    names = {b.name for b in await client.list_builders()}
    return [] if builder in names else sorted(n for n in names if n.startswith(f"{builder}@"))


async def cmd_stop(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        stopped = await client.stop_build(args.builder, args.number, args.reason)
        build = None if stopped else await client.get_build(args.builder, args.number)
    if args.json:
        _emit_json({"stopped": stopped})
    if stopped:
        if not args.json:
            print(f"stopping {args.builder}/{args.number}")
        return 0
    # Nothing was stopped: a script must not read that as success.
    what = f"build {args.builder}/{args.number}"
    if build is not None and build.result is not None:
        why = f"{what} has already finished ({build.result.name}); nothing to stop"
    else:
        why = f"{what} is not running on this coordinator; nothing to stop"
    raise FailedPrecondition("FAILED_PRECONDITION", why)


async def cmd_cancel(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        req = await client.cancel_build_request(args.request_id, args.reason)
    if args.json:
        _emit_json(req)
    else:
        print(f"cancelled build request {req.id} ({req.builder}, buildset {req.buildset_id})")
    return 0


def _show_list(args: argparse.Namespace, key: str, items: Sequence[Any],
               table: Callable[[Sequence[Any]], RenderableType], empty: str) -> int:
    """A list command's output: `{key: [...]}` with --json, else a table (or `empty`)."""
    if args.json:
        _emit_json({key: items})
    else:
        _console().print(table(items) if items else empty)
    return 0


async def cmd_builders(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        builders = await client.list_builders()
    return _show_list(args, "builders", builders, render.builders_table, "no builders configured")


async def cmd_builds(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        combos = await _combinations(client, args.builder) if args.builder else []
        if combos:  # a matrix builder: its combinations' builds, grouped by buildset
            found = [b for c in combos for b in await client.list_builds(c, args.limit)]
            builds = sorted(found, key=lambda b: (-b.buildset_id, b.builder))[: args.limit]
        else:
            builds = await client.list_builds(args.builder, args.limit)
    return _show_list(args, "builds", builds, render.builds_table, "no builds yet")


async def cmd_build(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        build = await client.get_build(args.builder, args.number)
    if args.json:
        _emit_json(build)
    else:
        _console().print(render.build_detail(build))
    return 0


async def cmd_changes(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        changes = await client.list_changes(args.limit)
    return _show_list(args, "changes", changes, render.changes_table, "no changes yet")


async def cmd_workers(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        workers = await client.list_workers()
    return _show_list(args, "workers", workers, render.workers_table, "no workers configured")


async def cmd_notifications(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.list_notifications(args.limit, args.state)
    return _show_list(args, "notifications", items, render.notifications_table, "no notifications")


async def cmd_schedulers(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.list_schedulers()
    return _show_list(args, "schedulers", items, render.schedulers_table, "no schedulers configured")


async def cmd_scheduler_set(args: argparse.Namespace) -> int:
    enabled = args.action == "enable"
    async with _client(args) as client:
        sched = await client.set_scheduler_enabled(args.name, enabled)
    if args.json:
        _emit_json(sched)
    else:
        print(f"scheduler {sched.name} {'enabled' if sched.enabled else 'disabled'}")
    return 0


async def cmd_pending(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.list_pending(args.builder)
    return _show_list(args, "pending", items, render.pending_table, "no pending build requests")


async def cmd_requests(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.list_build_requests(args.builder, args.buildset, args.limit)
    return _show_list(args, "requests", items, render.requests_table, "no build requests")


async def cmd_log(args: argparse.Namespace) -> int:
    channel = Channel[args.channel.upper()]
    out = sys.stdout.buffer
    where = (args.builder, args.number, args.step)
    stamper = LineStamper() if args.timestamps else None

    def write(chunk: LogChunk) -> None:
        if args.json:  # the chunk with its times; --follow alone keeps printing {"data": ...}
            _emit_json({"data": chunk.data} if args.follow and stamper is None else chunk)
        elif stamper is not None:
            out.write(stamper.feed(chunk.data, chunk.offset, chunk.times))
        else:
            out.write(chunk.data)

    async with _client(args) as client:
        if args.follow:
            async for piece in client.follow_log_chunks(*where, log=args.log, channel=channel):
                write(piece)
                out.flush()
            return 0
        offset = 0
        while True:
            chunk = await client.read_log(*where, log=args.log, offset=offset, channel=channel)
            write(chunk)
            offset = chunk.offset + len(chunk.data)
            if chunk.eof or not chunk.data:
                break
    out.flush()
    return 0


def _wants_dashboard(args: argparse.Namespace, console: Console) -> bool:
    """The dashboard is for a person at a terminal; scripts, pipes, `--lines`, and the
    event-stream options (`--kind`, `--since`) get one line (or JSON object) per event."""
    if args.json or args.lines or args.kind or args.since != -1:
        return False
    return console.is_terminal and not console.is_dumb_terminal


async def cmd_watch(args: argparse.Namespace) -> int:
    console = _console()
    if _wants_dashboard(args, console):
        from clients.dashboard import run_dashboard

        async with _client(args) as client:
            return await run_dashboard(client, console, args.builder)
    async with _client(args) as client:
        events = client.subscribe(since_event_id=args.since, builders=args.builder, kinds=args.kind)
        async for event in events:
            if args.json:
                _emit_json(event)
            else:
                console.print(render.event_line(event), soft_wrap=True)
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    from clients.up import run_up  # only `gantry up` needs the process machinery

    return await run_up(Path(args.data_dir), args.listen, _console())


async def cmd_artifacts(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.list_artifacts(args.builder, args.number)
    return _show_list(args, "artifacts", items, render.artifacts_table,
                      f"build {args.builder}/{args.number} has no artifacts")


async def cmd_tests(args: argparse.Namespace) -> int:
    view = "history" if args.test else args.view or "failing"
    async with _client(args) as client:
        report = await client.list_tests(args.builder, view, name=args.test or "", builds=args.builds,
                                         limit=args.limit)
    if args.json:
        _emit_json(report)
        return 0
    items = report.runs if view == "history" else report.tests
    if not items:
        empty = {
            "failing": "no failing tests", "flaky": "no flaky tests", "slowest": "no timed tests",
            "history": f"no runs of {args.test}",
        }[view]
        _console().print(f"{empty} in the last {report.builds} build(s) of {args.builder} with test results")
        return 0
    _console().print(render.tests_table(report, view))
    return 0


def _download_target(output: str | None, name: str) -> Path:
    target = Path(output or name)
    return target / name if target.is_dir() else target


async def cmd_download(args: argparse.Namespace) -> int:
    """Download an artifact to a temporary file next to the target, check its size and sha256,
    then rename it into place (a failed download leaves nothing behind)."""
    target = _download_target(args.output, args.name)
    tmp = target.with_name(f".{target.name}.part")
    digest, size = hashlib.sha256(), 0
    artifact: Artifact | None = None
    stderr = Console(stderr=True, highlight=False)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=stderr, transient=True,
        disable=args.json or not stderr.is_terminal,
    )
    try:
        with tmp.open("wb") as out, progress:
            task = progress.add_task(args.name, total=None)
            async with _client(args) as client:
                async for item in client.download_artifact(args.builder, args.number, args.name):
                    if isinstance(item, Artifact):
                        artifact = item
                        progress.update(task, total=item.size)
                        continue
                    out.write(item)
                    digest.update(item)
                    size += len(item)
                    progress.update(task, completed=size)
        if artifact is None:
            raise LocalError("the coordinator sent no artifact record")
        if size != artifact.size or digest.hexdigest() != artifact.sha256:
            raise LocalError(
                f"{args.name} arrived damaged ({size} of {artifact.size} bytes, sha256 "
                f"{digest.hexdigest()} instead of {artifact.sha256}); nothing was written"
            )
        tmp.replace(target)
    except OSError as err:
        raise LocalError(f"cannot write {target}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    if args.json:
        _emit_json({"artifact": artifact, "path": str(target)})
    else:
        print(f"{target}  {fmt.format_size(size)}  sha256 {digest.hexdigest()}")
    return 0
