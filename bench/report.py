"""The results table: rich when available, plain text otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bench.metrics import METRICS, ScenarioResult, fmt


@dataclass
class Row:
    scenario: str
    metric: str
    gantry: str
    target: str
    ok: bool | None
    ref: str
    buildbot: str
    ratio: str


def build_rows(
    results: Sequence[ScenarioResult], buildbot: dict[str, ScenarioResult] | None
) -> list[Row]:
    rows: list[Row] = []
    for res in results:
        bb = (buildbot or {}).get(res.scenario)
        for m in (m for m in METRICS if m.scenario == res.scenario):
            value = res.values.get(m.metric)
            bb_value = bb.values.get(m.metric) if bb is not None else None
            if res.error:
                gantry = "error"
            else:
                gantry = f"{fmt(value)} {m.unit}" if value is not None else "—"
            if buildbot is None:
                bb_text = ""
            elif bb is None or (bb.error and bb_value is None):
                bb_text = "n/a"
            else:
                bb_text = f"{fmt(bb_value)} {m.unit}" if bb_value is not None else "—"
            adv = m.advantage(value, bb_value)
            rows.append(
                Row(
                    scenario=m.scenario,
                    metric=m.metric,
                    gantry=gantry,
                    target=f"{m.target_text()} {m.unit}" if m.target is not None else "—",
                    ok=m.meets(value) if not res.error else False,
                    ref=f"{m.ref:g} {m.unit} (ref)" if m.ref is not None else "—",
                    buildbot=bb_text,
                    ratio=f"{adv:.1f}× better" if adv is not None and adv >= 1
                    else (f"{1 / adv:.1f}× worse" if adv is not None else ""),
                )
            )
    return rows


def _notes(results: Sequence[ScenarioResult], buildbot: dict[str, ScenarioResult] | None,
           buildbot_status: str) -> list[str]:
    notes: list[str] = []
    for res in results:
        if res.error:
            notes.append(f"{res.scenario}: ERROR {res.error}")
        notes += res.notes
        notes.append(f"{res.scenario}: scenario wall time {res.seconds:.1f} s")
    if buildbot_status:
        notes.append(f"buildbot: {buildbot_status}")
    for res in (buildbot or {}).values():
        if res.error:
            notes.append(f"buildbot {res.scenario}: ERROR {res.error}")
        notes += [f"buildbot {n}" for n in res.notes]
    return notes


def print_report(
    results: Sequence[ScenarioResult],
    buildbot: dict[str, ScenarioResult] | None = None,
    buildbot_status: str = "",
    plain: bool = False,
    header_notes: Sequence[str] = (),
) -> None:
    rows = build_rows(results, buildbot)
    notes = [*header_notes, *_notes(results, buildbot, buildbot_status)]
    show_bb = buildbot is not None
    try:
        if plain:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(rows, notes, show_bb)
        return
    table = Table(title="Gantry benchmarks", show_lines=False)
    for col, just in [("scenario", "left"), ("metric", "left"), ("Gantry", "right"), ("target", "right"),
                      ("Buildbot", "right")]:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    if show_bb:
        table.add_column("Buildbot (measured)", justify="right")
        table.add_column("ratio", justify="right")
    for r in rows:
        mark = {True: "[green]✓[/green]", False: "[red]✗[/red]", None: ""}[r.ok]
        cells = [r.scenario, r.metric, r.gantry, f"{r.target} {mark}".strip(), r.ref]
        if show_bb:
            cells += [r.buildbot, r.ratio]
        table.add_row(*cells)
    console = Console(width=max(150, Console().width))
    console.print(table)
    for n in notes:  # plain print: long notes stay on one line (easy to grep and paste)
        print(f"  • {n}")


def _print_plain(rows: list[Row], notes: list[str], show_bb: bool) -> None:
    header = ["scenario", "metric", "Gantry", "target", "Buildbot"]
    if show_bb:
        header += ["Buildbot (measured)", "ratio"]
    table = [header]
    for r in rows:
        mark = {True: "ok", False: "MISS", None: ""}[r.ok]
        cells = [r.scenario, r.metric, r.gantry, f"{r.target} {mark}".strip(), r.ref]
        if show_bb:
            cells += [r.buildbot, r.ratio]
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    out = sys.stdout
    for k, row in enumerate(table):
        padded = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        out.write("  ".join(padded).rstrip() + "\n")
        if k == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    for n in notes:
        out.write(f"  * {n}\n")
