"""The web UI at scale: a database of 10 000 builds over 50 builders (filled through the storage
layer, as the coordinator writes them), a real build whose log has 200 000 lines, then Debian's
chromium (Playwright) loads the pages.

    python -m bench.web                 # 10 000 builds, 200 000 log lines
    python -m bench.web --builds 2000   # smaller
    python -m bench.web --db /tmp/web.sqlite --pages waterfall,home --tree /path/to/main --json runs.jsonl
        # reuse a filled database, measure two pages, with another checkout's coordinator (an A/B
        # on the same machine: alternate the trees), and append the numbers as one JSON line

Prints, per page: first contentful paint (ms, from the browser's Paint Timing; also of the
coordinator's first rendering of the page, before its cache of finished builds is warm), bytes transferred
(document + script + stylesheet, from Resource Timing), and server time of the HTML; for the log
viewer, the time until the first screen of the log is shown.

Then, with waterfall and home open in turn, forces about `--rate` builds a second (gRPC
ForceBuild, round robin over the builders) for `--live-seconds` and prints the browser's
main-thread cost while those events arrive: the longest task and the tasks over 50 ms (Long
Tasks API), the main thread's busy share (CDP Performance.getMetrics TaskDuration, of which
script), the fragment re-fetches, and the builds forced and finished in the window.

Last, issue 11's targets for the pages measured: first paint <= 300 ms warm and cold, <= 500 KB
for the waterfall, no main-thread task over 50 ms while events arrive (wall and CPU), each met
or not. Wall times include waiting for a core: on a loaded machine compare with the load
average printed, and with the CPU columns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc

from bench import harness
from bench.harness import BuilderSpec, ClusterSpec, Coordinator, Workspace, start_worker, stop_all
from coordinator.domain.builds import bookkeeping
from coordinator.domain.events import build_started, buildrequest_added, buildset_added, step_finished, step_started
from coordinator.domain.model import BuildRequest, NewBuildset, PropertyValue, SourceStamp
from coordinator.domain.results import Result
from coordinator.storage.sql import open_storage
from protos.gantry.v1 import control_pb2, control_pb2_grpc

BUILDERS = 50
STEPS = ("checkout", "compile", "test")
CHROMIUM = "/usr/bin/chromium"


async def fill(db_url: str, builds: int) -> None:
    """`builds` finished builds round-robin over the builders, one in twenty failing."""
    db = await open_storage(db_url, lambda events: None)
    rnd = random.Random(11)
    t = time.time() - builds * 30
    try:
        for i in range(builds):
            builder = f"builder-{i % BUILDERS:02d}"
            bs = NewBuildset(reason="bench", scheduler="bench", builders=[builder],
                             sourcestamps=[SourceStamp(repository="r", branch="main", revision=f"{i:040x}")],
                             properties=[PropertyValue("scheduler", "bench", "Scheduler")])

            def added(bs_id: int, reqs: list[BuildRequest], bs: NewBuildset = bs, at: float = t) -> list:
                return [buildset_added(bs_id, bs, at), *(buildrequest_added(r, at) for r in reqs)]

            bs_id, reqs = await db.buildsets.add_buildset(bs, t, None, events=added)
            req = BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=0, submitted_at=t)
            await db.buildsets.claim_request(req.id, "bench", t)
            build = await db.builds.start_build(req, "w1", [], t, STEPS, events=lambda b: [build_started(b)])
            at = t
            result = Result.FAILURE if rnd.random() < 0.05 else Result.SUCCESS
            for step in build.steps:
                await db.builds.start_step(build, step, at, [step_started(build, step, at)])
                at += rnd.uniform(1, 60) if step.name != "test" else rnd.uniform(5, 3000)
                r = result if step.name == "test" else Result.SUCCESS
                await db.builds.finish_step(build, step, r, step.name, at, [], [step_finished(build, step, r, "", at)])
            await bookkeeping.finish_build(db.book, build, result, "bench", at)
            t += 30
            if i % 1000 == 999:
                print(f"  {i + 1} builds stored", file=sys.stderr)
    finally:
        await db.aclose()


async def measure(base: str, path: str, wait_for: str = "#live") -> dict[str, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            started = time.monotonic()
            await page.goto(base + path, wait_until="commit")
            await page.wait_for_selector(wait_for, timeout=120_000)
            shown = (time.monotonic() - started) * 1000
            # The selector can match before the browser painted: wait for the paint's entry (else 0).
            await page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
            timing = json.loads(await page.evaluate("""() => JSON.stringify({
                fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0,
                nav: performance.getEntriesByType('navigation')[0].transferSize,
                server: performance.getEntriesByType('navigation')[0].responseEnd
                        - performance.getEntriesByType('navigation')[0].requestStart,
                res: performance.getEntriesByType('resource')
                        .filter(r => !r.name.includes('/api/v1/events'))
                        .reduce((a, r) => a + r.transferSize, 0),
            })"""))
            return {"fcp_ms": timing["fcp"], "kb": (timing["nav"] + timing["res"]) / 1024,
                    "html_ms": timing["server"], "shown_ms": shown}
        finally:
            await browser.close()


# Long tasks from before the events start; the page's own scripts are already running.
WATCH_LONG_TASKS = """() => { window.__long = [];
    new PerformanceObserver(l => { for (const e of l.getEntries()) window.__long.push(e.duration); })
        .observe({type: 'longtask'}); }"""


# Resolves once a frame has been rendered after the call (the second animation frame).
RENDERED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"

TRACE = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink", "v8"]


def main_thread_tasks(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The renderer main thread's tasks from a Chrome trace: wall ms, CPU (thread) ms, and where
    the time of each went (its direct work: parse, style, layout, script...). Under load a task's
    wall time includes waiting for a core; its CPU time is what the page itself costs."""
    events = trace["traceEvents"]
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    tasks = []
    for e in events:
        if (e["pid"], e["tid"]) in mains and e.get("ph") == "X" and e.get("name") == "RunTask" and "dur" in e:
            tasks.append({"wall": e["dur"] / 1000, "cpu": e.get("tdur", e["dur"]) / 1000, "ts": e["ts"],
                          "end": e["ts"] + e["dur"], "thread": (e["pid"], e["tid"])})
    return tasks


# DevTools' names for the work a task does (they nest in the trace under longer names).
WORK = {"ParseHTML": "parse", "UpdateLayoutTree": "style", "Layout": "layout", "PrePaint": "prepaint",
        "Paint": "paint", "Layerize": "layerize", "FunctionCall": "script", "EvaluateScript": "script",
        "v8.compile": "compile", "HitTest": "hit test"}


def breakdown(trace: dict[str, Any], task: dict[str, Any]) -> dict[str, float]:
    """Wall ms per kind of work inside one task: why it was long."""
    out: dict[str, float] = {}
    for e in trace["traceEvents"]:
        if ((e["pid"], e["tid"]) == task["thread"] and e.get("ph") == "X" and e.get("name") in WORK
                and task["ts"] <= e["ts"] < task["end"] and "dur" in e):
            out[WORK[e["name"]]] = out.get(WORK[e["name"]], 0.0) + e["dur"] / 1000
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:6])


async def force_at(address: str, builders: list[str], rate: float, seconds: float) -> tuple[int, int]:
    """ForceBuild round robin over `builders`, `rate` a second for `seconds`, paced on a clock
    (not on the replies), as fast changes would arrive. Returns (acknowledged, refused)."""
    async with grpc.aio.insecure_channel(address) as channel:
        control = control_pb2_grpc.ControlServiceStub(channel)
        began = time.monotonic()
        calls = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            req = control_pb2.ForceBuildRequest(builder=builders[i % len(builders)], reason="bench live")
            calls.append(asyncio.ensure_future(control.ForceBuild(req, timeout=60)))
        done = await asyncio.gather(*calls, return_exceptions=True)
    refused = sum(isinstance(d, BaseException) for d in done)
    return len(done) - refused, refused


async def finished_between(address: str, since: float, until: float) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        control = control_pb2_grpc.ControlServiceStub(channel)
        builds = (await control.ListBuilds(control_pb2.ListBuildsRequest(limit=1000))).builds
    return sum(1 for b in builds if b.complete and since <= b.finished_at.ToSeconds() <= until)


async def measure_live(base: str, address: str, path: str, rate: float, seconds: float) -> dict[str, Any]:
    """The page's main-thread cost while ~`rate` builds a second are forced for `seconds`."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await ctx.new_page()
            fetches = 0

            def count(request: Any) -> None:
                nonlocal fetches
                fetches += "fragment=1" in request.url

            page.on("request", count)
            await page.goto(base + path)
            await page.wait_for_selector("#live")
            await page.evaluate(RENDERED)  # the page's own first layout is not "while events arrive"
            await page.evaluate(WATCH_LONG_TASKS)
            await browser.start_tracing(page=page, categories=TRACE)
            cdp = await ctx.new_cdp_session(page)
            await cdp.send("Performance.enable")
            before = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
            began_wall, began = time.time(), time.monotonic()
            acked, refused = await force_at(address, [f"builder-{i:02d}" for i in range(BUILDERS)], rate, seconds)
            wall = time.monotonic() - began
            done = await finished_between(address, began_wall, began_wall + wall)
            after = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
            long = [float(d) for d in await page.evaluate("() => window.__long")]
            trace = json.loads(await browser.stop_tracing())
            tasks = main_thread_tasks(trace)
            why = breakdown(trace, max(tasks, key=lambda t: t["cpu"])) if tasks else {}
        finally:
            await browser.close()
    return {
        "longest_ms": max(long, default=0.0), "over_50": float(len(long)),
        "busy_pct": 100 * (after["TaskDuration"] - before["TaskDuration"]) / wall,
        "script_pct": 100 * (after["ScriptDuration"] - before["ScriptDuration"]) / wall,
        "layout_pct": 100 * (after["LayoutDuration"] + after["RecalcStyleDuration"]
                             - before["LayoutDuration"] - before["RecalcStyleDuration"]) / wall,
        "cpu_longest_ms": max((t["cpu"] for t in tasks), default=0.0),
        "cpu_over_50": float(sum(t["cpu"] > 50 for t in tasks)),
        "fetches": float(fetches), "seconds": wall, "forced": float(acked), "refused": float(refused),
        "finished": float(done), "why": why,
    }


def run_biglog(base: str) -> None:
    """Force the build with the big log and wait until it finished (stdlib HTTP: only the web
    packages import aiohttp, tests/test_architecture.py)."""
    req = urllib.request.Request(f"{base}/api/v1/builders/biglog/force", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
    events = f"{base}/api/v1/events?since=0&builders=biglog&kinds=build.finished"
    with urllib.request.urlopen(events, timeout=600) as r:
        for line in r:
            if line.startswith(b"data:"):
                return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PAGES = [
    ("home", "/", "#live"), ("waterfall", "/waterfall", "#live"),
    ("builder", "/builders/builder-07", "#live"), ("console", "/console", "#live"),
    ("build", "/builders/builder-07/builds/100", "#live"),
    ("log viewer", "/builders/biglog/builds/1/steps/0/logs/stdio", "#log[data-ready]"),
]
LIVE = [("waterfall", "/waterfall"), ("home", "/")]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--builds", type=int, default=10_000)
    ap.add_argument("--log-lines", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=20.0, help="builds forced a second while a page is open")
    ap.add_argument("--live-seconds", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--db", type=Path, help="an SQLite file: filled if missing, reused if present "
                    "(filling 10 000 builds takes minutes)")
    ap.add_argument("--pages", default="", help="comma-separated page names to measure "
                    f"(default all: {', '.join(n for n, _, _ in PAGES)})")
    ap.add_argument("--tree", type=Path, help="run the coordinator of another checkout (its web UI), "
                    "e.g. the main branch, to compare against it on the same machine")
    ap.add_argument("--json", type=Path, help="append this run's numbers to FILE as one JSON line")
    args = ap.parse_args()
    wanted = [n.strip() for n in args.pages.split(",") if n.strip()]
    unknown = set(wanted) - {n for n, _, _ in PAGES}
    if unknown:
        ap.error(f"unknown page(s) {', '.join(sorted(unknown))}; known: {', '.join(n for n, _, _ in PAGES)}")
    if args.tree:
        if not (args.tree / "coordinator" / "__main__.py").exists():
            ap.error(f"--tree {args.tree}: no coordinator package there")
        harness.REPO_ROOT = args.tree.resolve()  # the processes' working directory and PYTHONPATH
    with Workspace("web", keep=args.keep) as ws:
        out = await run(ws.path, args.builds, args.log_lines, args.db, args.rate, args.live_seconds,
                        wanted or [n for n, _, _ in PAGES])
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps({"tree": str(args.tree or harness.REPO_ROOT), "at": time.time(),
                                "load": os.getloadavg()[0], **out}) + "\n")


async def run(root: Path, builds: int, log_lines: int, db: Path | None = None,
              rate: float = 20.0, live_seconds: float = 10.0, pages: list[str] | None = None) -> dict[str, Any]:
    pages = pages or [n for n, _, _ in PAGES]
    spec = ClusterSpec(
        workers=[("w1", "s1", 8)],
        builders=[BuilderSpec(f"builder-{i:02d}", ["w1"], ["true"]) for i in range(BUILDERS)]
        + [BuilderSpec("biglog", ["w1"], ["python3", "-c",
                                          f"for i in range({log_lines}): print(f'line {{i:6d}} ' + 'x' * 80)"])],
    )
    db_path = (db or root / "gantry.sqlite").resolve()
    if not db_path.exists():
        db_path.parent.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        await fill(f"sqlite+aiosqlite:///{db_path}", builds)
        print(f"stored {builds} builds in {time.monotonic() - began:.0f} s", file=sys.stderr)
    port = free_port()
    coord = Coordinator(root, spec, ["--db", f"sqlite+aiosqlite:///{db_path}", "--http", f"127.0.0.1:{port}"])
    procs = [coord.proc]
    try:
        address = coord.wait_ready()
        procs.append(start_worker(root, address, "w1", "s1", 8))
        base = f"http://127.0.0.1:{port}"
        if "log viewer" in pages:
            await asyncio.to_thread(run_biglog, base)
        rows = []
        for name, path, sel in [p for p in PAGES if p[0] in pages]:
            print(f"  measuring {name}", file=sys.stderr)
            cold = await measure(base, path, sel)  # the coordinator's first rendering of it
            warm = await measure(base, path, sel)
            rows.append((name, {**warm, "cold_fcp_ms": cold["fcp_ms"], "cold_shown_ms": cold["shown_ms"]}))
        print(f"\n{builds} builds over {BUILDERS} builders; log of {log_lines} lines; "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print("First contentful paint, warm and cold (the coordinator's first rendering of the page), "
              "KB transferred,\nthe server's time for the HTML, and until the content is shown, warm and cold\n")
        print(f"{'page':<12}{'FCP ms':>8}{'cold':>6}{'KB':>8}{'HTML ms':>9}{'shown ms':>10}{'cold':>6}")
        for name, m in rows:
            print(f"{name:<12}{m['fcp_ms']:>8.0f}{m['cold_fcp_ms']:>6.0f}{m['kb']:>8.1f}"
                  f"{m['html_ms']:>9.0f}{m['shown_ms']:>10.0f}{m['cold_shown_ms']:>6.0f}")
        live = []
        for name, path in [p for p in LIVE if p[0] in pages]:
            print(f"  {name} open while builds are forced", file=sys.stderr)
            live.append((name, await measure_live(base, address, path, rate, live_seconds)))
        if live:
            print_live(live, rate, live_seconds)
        print_targets(rows, live)
    finally:
        stop_all(procs)
    return {"pages": dict(rows), "live": dict(live)}


def print_targets(rows: list[tuple[str, dict[str, Any]]], live: list[tuple[str, dict[str, Any]]]) -> None:
    """Issue 11's targets, met or not, for the waterfall and home."""
    print("\nTargets (issue 11)")
    ok = {True: "met", False: "NOT met"}
    for name, m in rows:
        if name in ("waterfall", "home"):
            print(f"  {name}: first paint <= 300 ms warm {m['fcp_ms']:.0f} {ok[m['fcp_ms'] <= 300]}, "
                  f"cold {m['cold_fcp_ms']:.0f} {ok[m['cold_fcp_ms'] <= 300]}"
                  + (f"; {m['kb']:.0f} KB <= 500 {ok[m['kb'] <= 500]}" if name == "waterfall" else ""))
    for name, lm in live:
        print(f"  {name} while events arrive: no task over 50 ms, wall {lm['longest_ms']:.0f} ms "
              f"({lm['over_50']:.0f} over) {ok[lm['over_50'] == 0]}, CPU {lm['cpu_longest_ms']:.0f} ms "
              f"({lm['cpu_over_50']:.0f} over) {ok[lm['cpu_over_50'] == 0]}; load average {os.getloadavg()[0]:.1f}")


def print_live(live: list[tuple[str, dict[str, Any]]], rate: float, seconds: float) -> None:
    print(f"\nThe main thread while ~{rate:.0f} builds/s are forced for {seconds:.0f} s: longest task "
          "and tasks over 50 ms\nin wall time (Long Tasks API), then in CPU time (trace), busy share "
          "(wall), re-fetches\n")
    print(f"{'page':<11}{'longest':>8}{'>50ms':>6}{'cpu':>5}{'>50':>4}{'busy%':>7}{'script%':>8}"
          f"{'layout%':>8}{'fetch':>6}{'forced/s':>9}{'done/s':>7}")
    for name, lm in live:
        print(f"{name:<11}{lm['longest_ms']:>8.0f}{lm['over_50']:>6.0f}{lm['cpu_longest_ms']:>5.0f}"
              f"{lm['cpu_over_50']:>4.0f}{lm['busy_pct']:>7.1f}"
              f"{lm['script_pct']:>8.1f}{lm['layout_pct']:>8.1f}{lm['fetches']:>6.0f}"
              f"{lm['forced'] / lm['seconds']:>9.1f}{lm['finished'] / lm['seconds']:>7.1f}")
        print(f"  its longest task ({lm['cpu_longest_ms']:.0f} ms CPU), wall ms: "
              + ", ".join(f"{k} {v:.0f}" for k, v in lm["why"].items()))
        if lm["refused"]:
            print(f"  ({lm['refused']:.0f} ForceBuild calls refused)")


if __name__ == "__main__":
    asyncio.run(main())
