"""Test results as data: what a builder's recorded test cases say across its recent builds —
which tests fail now (and which only just started to), which are flaky, which are slowest and
how their duration moves.

Flaky means: the same test both passed and failed on one revision inside the window (a rebuild,
a forced build, or builds of the same revision by different changes), so the code did not
change but the outcome did. Tests of builds whose revision is unknown are never called flaky.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from coordinator.domain.errors import InvalidArgument
from coordinator.domain.model import CaseRun
from coordinator.domain.ports import CaseHistorySource

DEFAULT_WINDOW = 20  # builds looked at
MAX_WINDOW = 500
MAX_FAILING = 1000  # failing tests whose history is read (a broken build can fail them all)


class View(Enum):
    FAILING = "failing"
    FLAKY = "flaky"
    SLOWEST = "slowest"
    HISTORY = "history"  # every run of one test


@dataclass(frozen=True)
class CaseSummary:
    """One test across the window: its latest run and what the runs before it say."""

    name: str
    latest: CaseRun
    runs: int  # runs in the window
    failures: int  # failed runs in the window
    flips: int  # pass <-> fail changes between consecutive runs of the same revision
    failing_since: int | None  # first build of the current failing streak (None: passing)
    newly_failing: bool  # fails in the latest build, did not in the one before (or is new)
    mean_duration: float | None  # of the runs before the latest (the trend's baseline)


@dataclass(frozen=True)
class CaseReport:
    builder: str
    view: View
    builds: int  # builds the window held
    summaries: list[CaseSummary]
    runs: list[CaseRun]  # View.HISTORY only


def summarize(name: str, runs: Sequence[CaseRun]) -> CaseSummary:
    """`runs` of one test, newest first."""
    latest = runs[0]
    failing_since = None
    for run in runs:  # newest first: walk back through the current failing streak
        if not run.case.failed:
            break
        failing_since = run.number
    flips = 0
    for newer, older in zip(runs, runs[1:], strict=False):
        if newer.revision and newer.revision == older.revision and _flipped(newer, older):
            flips += 1
    earlier = [r.case.duration for r in runs[1:] if r.case.duration is not None]
    return CaseSummary(
        name=name,
        latest=latest,
        runs=len(runs),
        failures=sum(1 for r in runs if r.case.failed),
        flips=flips,
        failing_since=failing_since,
        newly_failing=latest.case.failed and (len(runs) == 1 or not runs[1].case.failed),
        mean_duration=sum(earlier) / len(earlier) if earlier else None,
    )


def is_flaky(runs: Sequence[CaseRun]) -> bool:
    """Both outcomes on one known revision."""
    seen: dict[str, set[bool]] = {}
    for run in runs:
        if run.revision and run.case.outcome != "skipped":
            seen.setdefault(run.revision, set()).add(run.case.failed)
    return any(len(outcomes) == 2 for outcomes in seen.values())


def _flipped(a: CaseRun, b: CaseRun) -> bool:
    skipped = "skipped" in (a.case.outcome, b.case.outcome)
    return not skipped and a.case.failed != b.case.failed


def _by_name(runs: Sequence[CaseRun]) -> dict[str, list[CaseRun]]:
    grouped: dict[str, list[CaseRun]] = {}
    for run in runs:  # the source gives newest build first: each list stays newest first
        grouped.setdefault(run.case.full_name, []).append(run)
    return grouped


class CaseHistory:
    """Answers `gantry tests`: reads the window of recorded cases (one query, or two for the
    views that start from the latest build) and summarizes them."""

    def __init__(self, source: CaseHistorySource, find_builder: Callable[[str], object]) -> None:
        self.source = source
        self.find_builder = find_builder  # NotFound for a builder that is not configured

    async def report(
        self, builder: str, view: View, *, builds: int = 0, limit: int = 0, name: str = ""
    ) -> CaseReport:
        if not builder:
            raise InvalidArgument("builder is required")
        self.find_builder(builder)
        builds = builds or DEFAULT_WINDOW
        if not 0 < builds <= MAX_WINDOW:
            raise InvalidArgument(f"builds must be between 1 and {MAX_WINDOW}, not {builds}")
        if limit < 0:
            raise InvalidArgument(f"limit must be >= 0, not {limit}")
        limit = limit or 50
        if view is View.HISTORY:
            if not name:
                raise InvalidArgument("the history of a test needs its name (classname.name)")
            runs = await self.source.case_runs(builder, builds, [name])
            return CaseReport(builder, view, len({r.number for r in runs}), [], runs[:limit])
        if view is View.FLAKY:
            runs = await self.source.case_runs(builder, builds)
            grouped = _by_name(runs)
            flaky = [summarize(n, rs) for n, rs in grouped.items() if is_flaky(rs)]
            flaky.sort(key=lambda s: (-s.flips, -s.failures, s.name))
            return CaseReport(builder, view, len({r.number for r in runs}), flaky[:limit], [])
        # FAILING and SLOWEST start from the latest build's cases, then read only their history.
        latest = await self.source.case_runs(builder, 1)
        if view is View.FAILING:
            chosen = [r.case.full_name for r in latest if r.case.failed][:MAX_FAILING]
        else:
            timed = sorted((r for r in latest if r.case.duration is not None), key=lambda r: -(r.case.duration or 0))
            chosen = [r.case.full_name for r in timed[:limit]]
        runs = await self.source.case_runs(builder, builds, chosen) if chosen else []
        grouped = _by_name(runs)
        summaries = [summarize(n, grouped[n]) for n in chosen if n in grouped]
        if view is View.FAILING:  # the newly failing first, then the longest failing
            summaries.sort(key=lambda s: (not s.newly_failing, s.failing_since or 0, s.name))
        return CaseReport(builder, view, len({r.number for r in runs}), summaries[:limit], [])
