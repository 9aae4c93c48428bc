"""What each page shows, as plain JSON-able data (the page's JSON twin). Read through the same
servicer calls as the HTTP API, in a bounded number of reads per page (never one per build)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coordinator.web.api.backend import Backend

Doc = dict[str, Any]
RECENT = 250  # builds read at once for home, console and grid (a quiet builder's latest: one more read)
PAGE = 25  # a builder's history page
RUNNING_DETAILS = 50  # running builds shown with progress (one GetBuild each, bounded)
BAD = ("FAILURE", "EXCEPTION")


@dataclass
class Filters:
    """Which builders a page shows: any of `tags` (empty: all), and `name` as a substring."""

    tags: list[str] = field(default_factory=list)
    name: str = ""

    def keep(self, builder: Doc) -> bool:
        if self.tags and not set(self.tags) & set(builder["tags"]):
            return False
        return self.name.lower() in builder["name"].lower()

    @property
    def active(self) -> bool:
        return bool(self.tags or self.name)

    def doc(self) -> Doc:
        return {"tags": self.tags, "name": self.name}


def seconds(ts: str | None) -> float | None:
    """An RFC 3339 timestamp of the API's JSON as seconds since the epoch."""
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def status_of(build: Doc | None) -> str:
    """What a cell shows: a result name, RUNNING, or NONE (no build yet)."""
    if build is None:
        return "NONE"
    return str(build["result"]) if build["complete"] else "RUNNING"


def worst(statuses: Iterable[str]) -> str:
    order = ["EXCEPTION", "FAILURE", "WARNINGS", "RETRY", "RUNNING", "SUCCESS", "SKIPPED", "NONE"]
    found = [s for s in statuses if s in order]
    return min(found, key=order.index) if found else "NONE"


def matrix_of(builder: str) -> tuple[str, str]:
    """("test", "3.12,linux") for a matrix combination's builder `test@3.12,linux`; (name, "")
    for any other builder."""
    base, at, combo = builder.partition("@")
    return (base, combo) if at and base and combo else (builder, "")


def grouped(items: list[Doc]) -> list[Doc]:
    """Items with a builder `name`, each matrix's combinations gathered where its first one is:
    {"name", "matrix": bool, "items": [...]}, a plain builder being a group of one."""
    out: list[Doc] = []
    groups: dict[str, Doc] = {}
    for item in items:
        base, combo = matrix_of(item["name"])
        if not combo:
            out.append({"name": item["name"], "matrix": False, "items": [item]})
        elif base in groups:
            groups[base]["items"].append({**item, "combination": combo})
        else:
            groups[base] = {"name": base, "matrix": True, "items": [{**item, "combination": combo}]}
            out.append(groups[base])
    return out


async def _builders(api: Backend, flt: Filters) -> list[Doc]:
    return [b for b in (await api.get("ListBuilders"))["builders"] if flt.keep(b)]


async def _latest(api: Backend, builders: list[Doc], recent: list[Doc]) -> dict[str, Doc]:
    latest: dict[str, Doc] = {}
    for b in recent:  # newest first
        latest.setdefault(b["builder"], b)
    for b in builders:  # quiet builders only: not built in the last RECENT builds
        if b["name"] not in latest and len(recent) >= RECENT:
            got = (await api.get("ListBuilds", builder=b["name"], limit=1))["builds"]
            if got:
                latest[b["name"]] = got[0]
    return latest


async def _running(api: Backend, recent: list[Doc]) -> list[Doc]:
    out = []
    now = time.time()
    for b in [b for b in recent if not b["complete"]][:RUNNING_DETAILS]:
        full = await api.get("GetBuild", builder=b["builder"], number=b["number"])
        steps = full["steps"]
        done = sum(1 for s in steps if s["complete"])
        current = next((s["name"] for s in steps if s["started_at"] and not s["complete"]), "")
        started, eta = seconds(full["started_at"]), seconds(full.get("eta"))
        progress = done / len(steps) if steps else 0.0
        if started and eta and eta > started:
            progress = max(progress, min(0.99, (now - started) / (eta - started)))
        out.append({**b, "eta": full.get("eta"), "progress": round(progress, 3), "current_step": current,
                    "steps_done": done, "steps_total": len(steps)})
    return out


async def home(api: Backend, flt: Filters) -> Doc:
    builders = await _builders(api, flt)
    recent = (await api.get("ListBuilds", limit=RECENT))["builds"]
    latest = await _latest(api, builders, recent)
    names = {b["name"] for b in builders}
    workers = (await api.get("ListWorkers"))["workers"]
    cells = [{**b, "latest": latest.get(b["name"]), "status": status_of(latest.get(b["name"]))} for b in builders]
    groups = grouped(cells)
    for g in groups:
        g["status"] = worst(c["status"] for c in g["items"])
    return {
        "filters": flt.doc(),
        "builders": cells,
        "groups": groups,
        "status": worst(c["status"] for c in cells),
        "failing": [c["name"] for c in cells if c["status"] in BAD],
        "running": [r for r in await _running(api, recent) if r["builder"] in names],
        "queue": sum(int(b["pending_requests"]) for b in builders),
        "workers": workers,
        "workers_online": sum(1 for w in workers if w["connected"]),
        "workers_held": sum(1 for w in workers if w["connected"] and w.get("state", "active") != "active"),
    }


async def waterfall(api: Backend, flt: Filters, limit: int) -> Doc:
    """Builders as columns, time downward on a rank scale: each distinct start or end time is one
    row, so a 10-second build and a 3-hour one are both readable."""
    groups = grouped(await _builders(api, flt))
    builders = [b for g in groups for b in g["items"]]  # a matrix's combinations side by side
    names = [b["name"] for b in builders]
    top = 1 if any(g["matrix"] for g in groups) else 0  # a row of matrix names above the heads
    bands, col = [], 2
    for g in groups:
        if g["matrix"]:
            bands.append({"name": g["name"], "col": col, "span": len(g["items"])})
        col += len(g["items"])
    if flt.active and len(names) <= 20:  # a team's view: its own builders' recent builds
        builds = []
        for n in names:
            builds += (await api.get("ListBuilds", builder=n, limit=limit, with_steps=True))["builds"]
        builds.sort(key=lambda b: -int(b["id"]))
        builds = builds[:limit]
    else:
        builds = [b for b in (await api.get("ListBuilds", limit=limit, with_steps=True))["builds"]
                  if b["builder"] in names]
    now = time.time()
    times = sorted({t for b in builds for t in _span(b, now)}, reverse=True)
    row = {t: i for i, t in enumerate(times)}
    column = {n: i for i, n in enumerate(names)}
    blocks = []
    for b in builds:
        start, end = _span(b, now)
        blocks.append({**b, "status": status_of(b), "col": column[b["builder"]] + 2,
                       "row_start": row[end] + 2 + top, "row_end": row[start] + 3 + top})
    pending = (await api.get("ListPendingRequests"))["requests"]
    workers = {w["name"]: w for w in (await api.get("ListWorkers"))["workers"]}
    heads = [{
        "name": b["name"], "combination": b.get("combination", ""), "tags": b["tags"],
        "pending": [p for p in pending if p["builder"] == b["name"]],
        "online": any(workers.get(w, {}).get("connected") for w in b["workers"]),
        "workers": [{"name": w, "connected": bool(workers.get(w, {}).get("connected"))} for w in b["workers"]],
    } for b in builders]
    return {
        "filters": flt.doc(), "limit": limit, "builders": heads, "builds": blocks, "matrices": bands,
        "head_row": 1 + top,
        "rows": [{"at": datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds"), "row": i + 2 + top}
                 for i, t in enumerate(times)],
        "status": worst(status_of(b) for b in builds[:len(names)]),
    }


def _span(b: Doc, now: float) -> tuple[float, float]:
    start = seconds(b["started_at"]) or now
    return start, seconds(b.get("finished_at")) or now


async def console(api: Backend, flt: Filters) -> Doc:
    """Changes (newest first) × builders: the builds of each change, matched by revision."""
    builders = await _builders(api, flt)
    changes = (await api.get("ListChanges", limit=30))["changes"]
    recent = (await api.get("ListBuilds", limit=RECENT))["builds"]
    by_rev: dict[tuple[str, str], list[Doc]] = {}
    for b in recent:
        for ss in b["sourcestamps"]:
            if ss["revision"]:
                by_rev.setdefault((ss["revision"], b["builder"]), []).append({**b, "status": status_of(b)})
    rows = [{**c, "cells": {n["name"]: by_rev.get((c["revision"], n["name"]), []) for n in builders}}
            for c in changes]
    # A matrix's combinations are adjacent columns under one head naming the matrix.
    groups = [{"name": g["name"], "matrix": g["matrix"],
               "columns": [{"name": b["name"], "combination": b.get("combination", "")} for b in g["items"]]}
              for g in grouped([{"name": b["name"]} for b in builders])]
    return {"filters": flt.doc(), "builders": [c["name"] for g in groups for c in g["columns"]],
            "groups": groups, "changes": rows,
            "status": worst(b["status"] for r in rows for cell in r["cells"].values() for b in cell[:1])}


async def grid(api: Backend, flt: Filters) -> Doc:
    """Builders × the newest buildsets: which builders each submission passed or failed."""
    builders = await _builders(api, flt)
    names = {b["name"] for b in builders}
    recent = [b for b in (await api.get("ListBuilds", limit=RECENT))["builds"] if b["builder"] in names]
    buildsets: list[int] = []
    cells: dict[str, dict[str, Doc]] = {}
    for b in recent:
        bs = int(b["buildset_id"])
        if bs not in buildsets:
            if len(buildsets) == 25:
                continue
            buildsets.append(bs)
        cells.setdefault(b["builder"], {}).setdefault(str(bs), {**b, "status": status_of(b)})
    rows = [{**b, "matrix": g["name"] if g["matrix"] else ""}
            for g in grouped([{"name": b["name"], "cells": cells.get(b["name"], {})} for b in builders])
            for b in g["items"]]
    return {"filters": flt.doc(), "buildsets": buildsets, "builders": rows,
            "status": worst(status_of(next(iter(c.values()), None)) for c in cells.values())}


async def builder(
    api: Backend, name: str, before_id: int, results: list[int], branch: str = "", test: str = ""
) -> Doc:
    info = await api.get("GetBuilder", name=name)
    builds = (await api.get("ListBuilds", builder=name, limit=PAGE, before_id=before_id, results=results,
                            branch=branch))["builds"]
    pending = (await api.get("ListPendingRequests", builder=name))["requests"]
    for b in builds:
        b["status"] = status_of(b)
    return {
        "builder": info, "builds": builds, "pending": pending, "results": results, "branch": branch,
        "tests": await _tests(api, name, test),
        "branches": sorted({ss["branch"] for b in builds for ss in b["sourcestamps"] if ss["branch"]}),
        "next_before_id": int(builds[-1]["id"]) if len(builds) == PAGE else 0,
        "status": status_of(builds[0]) if builds and not before_id and not results and not branch else "NONE",
    }


TESTS_SHOWN = 10  # tests per table of a builder's Tests section


async def _tests(api: Backend, builder: str, test: str) -> Doc:
    """What the builder's recorded test cases say (`gantry tests`): failing, flaky and slowest in
    its last 20 builds with tests, and the runs of `test` when one is picked. A builder that
    records no tests costs one read."""
    failing = await api.get("ListTests", builder=builder, view="TEST_VIEW_FAILING", limit=TESTS_SHOWN)
    doc: Doc = {"builds": failing["builds"], "failing": failing["tests"], "flaky": [], "slowest": [],
                "name": test, "history": []}
    if not failing["builds"]:
        return doc
    for view in ("flaky", "slowest"):
        got = await api.get("ListTests", builder=builder, view=f"TEST_VIEW_{view.upper()}", limit=TESTS_SHOWN)
        doc[view] = got["tests"]
    if test:
        doc["history"] = (await api.get("ListTests", builder=builder, view="TEST_VIEW_HISTORY", name=test,
                                        limit=PAGE))["runs"]
    return doc


async def build(api: Backend, name: str, number: int, siblings: bool = True) -> Doc:
    b = await api.get("GetBuild", builder=name, number=number)
    b["status"] = status_of(b)
    for s in b["steps"]:
        s["status"] = status_of(s) if s["started_at"] else "PENDING"
    return {"build": b, "status": b["status"], "siblings": await _siblings(api, b) if siblings else []}


SIBLINGS_WINDOW = 200  # builds around this one searched for its siblings' builds (one read)


async def _siblings(api: Backend, b: Doc) -> list[Doc]:
    """The other combinations of a matrix build's buildset: each request's state, and its build
    when that started among the SIBLINGS_WINDOW builds around this one (they start together)."""
    base, combo = matrix_of(b["builder"])
    if not combo:
        return []
    requests = (await api.get("ListBuildRequests", buildset_id=int(b["buildset_id"]), limit=1000))["requests"]
    near = (await api.get("ListBuilds", before_id=int(b["id"]) + SIBLINGS_WINDOW // 2,
                          limit=SIBLINGS_WINDOW))["builds"]
    builds = {x["build_request_id"]: x for x in near if x["buildset_id"] == b["buildset_id"]}
    out = []
    for r in sorted(requests, key=lambda r: r["builder"]):
        name, one = matrix_of(r["builder"])
        if name != base:
            continue
        got = builds.get(r["id"])
        status = status_of(got) if got else (str(r["result"]) if r["complete"] else "PENDING")
        out.append({"builder": r["builder"], "combination": one, "number": got["number"] if got else None,
                    "status": status, "current": r["builder"] == b["builder"]})
    return out


async def workers(api: Backend) -> Doc:
    ws = (await api.get("ListWorkers"))["workers"]
    builders = (await api.get("ListBuilders"))["builders"]
    for w in ws:
        w["builders"] = [b["name"] for b in builders if w["name"] in b["workers"]]
    return {"workers": ws, "status": "NONE"}


async def changes(api: Backend, limit: int) -> Doc:
    return {"changes": (await api.get("ListChanges", limit=limit))["changes"], "status": "NONE"}
