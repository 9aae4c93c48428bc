"""Test results as data: the failing, flaky, slowest and history views over recorded test cases,
and reading them from JUnit reports."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from coordinator.domain.errors import InvalidArgument, NotFound
from coordinator.domain.model import CaseResult, CaseRun
from coordinator.domain.status.case_history import CaseHistory, View, is_flaky, summarize
from coordinator.domain.steps.junit import MAX_MESSAGE, parse_junit


class Recorded:
    """The CaseHistorySource port over a list: builds (number, revision, cases), oldest first."""

    def __init__(self) -> None:
        self.builds: list[tuple[int, str, list[CaseResult]]] = []
        self.reads = 0

    def add(self, revision: str, *cases: CaseResult) -> None:
        self.builds.append((len(self.builds) + 1, revision, list(cases)))

    async def case_runs(self, builder: str, builds: int, names: Sequence[str] | None = None) -> list[CaseRun]:
        self.reads += 1
        window = [b for b in reversed(self.builds) if b[2]][:builds]
        return [
            CaseRun(number, revision, case)
            for number, revision, cases in window
            for case in cases
            if names is None or case.full_name in names
        ]


def known(name: str) -> object:
    if name != "app":
        raise NotFound(f"no builder named {name!r}")
    return name


def ok(name: str, duration: float | None = 1.0) -> CaseResult:
    return CaseResult(name, "suite", "passed", duration)


def bad(name: str, message: str = "assert 1 == 2", duration: float | None = 1.0) -> CaseResult:
    return CaseResult(name, "suite", "failed", duration, message)


async def test_failing_lists_the_newly_failing_first_with_their_streak() -> None:
    src = Recorded()
    src.add("r1", ok("a"), bad("b"), ok("c"))
    src.add("r2", ok("a"), bad("b"), ok("c"))
    src.add("r3", bad("a", "a broke"), bad("b", "still"), ok("c"))
    report = await CaseHistory(src, known).report("app", View.FAILING)

    assert [(s.name, s.newly_failing, s.failing_since, s.failures, s.runs) for s in report.summaries] == [
        ("suite.a", True, 3, 1, 3),
        ("suite.b", False, 1, 3, 3),
    ]
    assert report.summaries[0].latest.case.message == "a broke"
    assert report.builds == 3


async def test_a_test_failing_in_its_first_run_is_newly_failing() -> None:
    src = Recorded()
    src.add("r1", ok("a"))
    src.add("r2", ok("a"), bad("new"))
    [summary] = (await CaseHistory(src, known).report("app", View.FAILING)).summaries
    assert (summary.name, summary.newly_failing, summary.runs) == ("suite.new", True, 1)


async def test_flaky_means_both_outcomes_on_one_revision() -> None:
    src = Recorded()
    src.add("r1", ok("steady"), ok("flaky"), ok("fixed"))
    src.add("r1", ok("steady"), bad("flaky"), ok("fixed"))  # rebuilt: same revision, flaky failed
    src.add("r2", ok("steady"), ok("flaky"), bad("fixed"))  # a new revision breaks `fixed`: not flaky
    src.add("r3", ok("steady"), ok("flaky"), ok("fixed"))
    report = await CaseHistory(src, known).report("app", View.FLAKY)
    assert [(s.name, s.flips, s.failures) for s in report.summaries] == [("suite.flaky", 1, 1)]


def test_unknown_revisions_and_skips_never_make_a_test_flaky() -> None:
    runs = [CaseRun(2, "", bad("x")), CaseRun(1, "", ok("x"))]
    assert not is_flaky(runs)
    skipped = CaseResult("x", "suite", "skipped")
    assert not is_flaky([CaseRun(2, "r", skipped), CaseRun(1, "r", bad("x"))])
    assert summarize("suite.x", [CaseRun(2, "r", skipped), CaseRun(1, "r", bad("x"))]).flips == 0


async def test_slowest_come_from_the_latest_build_with_their_trend() -> None:
    src = Recorded()
    src.add("r1", ok("slow", 10.0), ok("fast", 0.1), ok("untimed", None))
    src.add("r2", ok("slow", 14.0), ok("fast", 0.3), ok("untimed", None))
    src.add("r3", ok("slow", 18.0), ok("fast", 0.2), ok("untimed", None))
    report = await CaseHistory(src, known).report("app", View.SLOWEST, limit=1)
    [slow] = report.summaries
    assert (slow.name, slow.latest.case.duration, slow.mean_duration) == ("suite.slow", 18.0, 12.0)


async def test_history_of_one_test_and_the_window() -> None:
    src = Recorded()
    for i in range(5):
        src.add(f"r{i}", ok("a") if i % 2 else bad("a"), ok("b"))
    history = CaseHistory(src, known)
    report = await history.report("app", View.HISTORY, name="suite.a", builds=3)
    assert [(r.number, r.case.outcome) for r in report.runs] == [(5, "failed"), (4, "passed"), (3, "failed")]
    assert report.builds == 3


async def test_refusals_name_the_problem() -> None:
    history = CaseHistory(Recorded(), known)
    with pytest.raises(NotFound, match="no builder named 'nope'"):
        await history.report("nope", View.FAILING)
    with pytest.raises(InvalidArgument, match="needs its name"):
        await history.report("app", View.HISTORY)
    with pytest.raises(InvalidArgument, match="between 1 and 500"):
        await history.report("app", View.FAILING, builds=501)
    with pytest.raises(InvalidArgument, match="builder is required"):
        await history.report("", View.FAILING)


async def test_no_recorded_tests_is_an_empty_report() -> None:
    report = await CaseHistory(Recorded(), known).report("app", View.FAILING)
    assert (report.builds, report.summaries) == (0, [])


def test_junit_cases_carry_outcome_time_and_a_bounded_message() -> None:
    long = "x" * (MAX_MESSAGE + 50)
    report = parse_junit(f"""<testsuites><testsuite name="s">
        <testcase classname="pkg.T" name="ok" time="0.25"/>
        <testcase classname="pkg.T" name="fails" time="1,234.5"><failure message="{long}">trace</failure></testcase>
        <testcase name="errs" time="soon"><error>first line
second line</error></testcase>
        <testcase classname="pkg.T" name="skips"><skipped/></testcase>
    </testsuite></testsuites>""".encode())
    assert [(c.full_name, c.outcome, c.duration) for c in report.cases] == [
        ("pkg.T.ok", "passed", 0.25),
        ("pkg.T.fails", "failed", 1234.5),
        ("errs", "error", None),
        ("pkg.T.skips", "skipped", None),
    ]
    assert report.cases[1].message == long[:MAX_MESSAGE]
    assert report.cases[2].message == "first line"
    assert (report.total, report.failed, report.skipped) == (4, 2, 1)
