"""The Test step: run the tests like a ShellCommand, then read their JUnit XML report(s) from the
worker and record the totals and the failing tests on the step."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.model import CaseResult
from coordinator.domain.results import Result, worst
from coordinator.domain.steps.base import ShellCommand, StepContext
from coordinator.domain.workers.commands import TransferError

PROPERTY_SOURCE = "Test Step"
DEFAULT_MAXSIZE = 10 * 1024 * 1024
MAX_MESSAGE = 1000  # characters of a failure message kept per test case (storage stays bounded)
_GLOB_CHARS = set("*?[")


class ReportError(Exception):
    """A JUnit report that cannot be read (not XML, entities, too large)."""


@dataclass
class TestReport:
    __test__ = False  # not a pytest test class

    total: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0
    failing: list[str] = field(default_factory=list)  # "classname.name: message"
    cases: list[CaseResult] = field(default_factory=list)  # every test case, stored as test history

    @property
    def passed(self) -> int:
        return self.total - self.failed - self.skipped

    def add(self, other: TestReport) -> None:
        self.total += other.total
        self.failed += other.failed
        self.skipped += other.skipped
        self.failing.extend(other.failing)
        self.cases.extend(other.cases)

    def summary(self) -> str:
        parts = [f"{self.total} test{'s' if self.total != 1 else ''}"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if not self.failed and not self.skipped:
            parts[0] += " passed"
        return ", ".join(parts)


def parse_junit(data: bytes) -> TestReport:
    """Count the <testcase>s of a JUnit XML document (any nesting of <testsuites>/<testsuite>).
    Documents with a DTD are refused: entities could expand without bound."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ReportError("refusing a JUnit report with a DOCTYPE or entities")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"not valid XML: {exc}") from None
    report = TestReport()
    for case in root.iter("testcase"):
        report.total += 1
        name = case.get("name", "?")
        classname = case.get("classname", "")
        full = f"{classname}.{name}" if classname else name
        bad = case.find("failure")
        outcome = "failed"
        if bad is None:
            bad, outcome = case.find("error"), "error"
        message = ""
        if bad is not None:
            report.failed += 1
            message = bad.get("message") or ((bad.text or "").strip().splitlines() or [""])[0]
            report.failing.append(f"{full}: {message}" if message else full)
        elif case.find("skipped") is not None:
            report.skipped += 1
            outcome = "skipped"
        else:
            outcome = "passed"
        report.cases.append(CaseResult(name, classname, outcome, _seconds(case.get("time")), message[:MAX_MESSAGE]))
    return report


def _seconds(text: str | None) -> float | None:
    """A testcase's `time` attribute (seconds; some tools write "1,234.5"), None if absent or not a number."""
    try:
        value = float((text or "").replace(",", ""))
    except ValueError:
        return None
    return value if value >= 0 and value == value else None  # not NaN


class MemorySink:
    """Keeps an uploaded file in memory (the size limit is enforced by the transfer)."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data

    async def commit(self) -> None:
        pass

    async def abort(self) -> None:
        self.data.clear()


class Test(ShellCommand):
    """Buildbot's Test step with JUnit reports: runs `command`, then reads the report files named
    by `junit` (a path or glob relative to the workdir, or a list of them), each at most
    `junit_maxsize` bytes. Sets the properties tests-total/-passed/-failed/-skipped, adds a
    `tests` log listing the failing tests, and shows e.g. "12 tests, 2 failed". The step FAILs
    when a test failed, even if the command exited 0. A missing report gives `missing_report`
    (FAILURE by default; WARNINGS to tolerate it)."""

    name = "test"
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        command: Any = ("make", "test"),
        junit: str | list[str] | None = None,
        junit_maxsize: int = DEFAULT_MAXSIZE,
        missing_report: int = Result.FAILURE,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("description", "testing")
        kwargs.setdefault("descriptionDone", "test")
        super().__init__(list(command) if isinstance(command, tuple) else command, **kwargs)
        self.junit = [junit] if isinstance(junit, str) else list(junit or [])
        self.junit_maxsize = junit_maxsize
        self.missing_report = Result(missing_report) if missing_report in set(Result) else Result.FAILURE
        if junit is not None and (not self.junit or not all(isinstance(p, str) and p.strip() for p in self.junit)):
            self.errors.append(f"junit must be a path or glob (or a list of them), not {junit!r}")
        if not isinstance(junit_maxsize, int) or isinstance(junit_maxsize, bool) or junit_maxsize <= 0:
            self.errors.append(f"junit_maxsize must be a number of bytes > 0, not {junit_maxsize!r}")
        if missing_report not in (Result.FAILURE, Result.WARNINGS, Result.SUCCESS):
            self.errors.append("missing_report must be FAILURE, WARNINGS or SUCCESS")

    async def run(self, ctx: StepContext) -> Result:
        result = self.evaluate(await self.run_shell(ctx), ctx)
        if result == Result.CANCELLED or not self.junit:
            return result
        report, read, problems = await self._read_reports(ctx)
        lines = [report.summary()] + [f"FAILED {name}" for name in report.failing] + problems
        await ctx.add_log("tests", "\n".join(lines) + "\n")
        if read:  # a step that found no report leaves an earlier step's totals alone
            await ctx.record_tests(report.cases)
            for key, value in (("tests-total", report.total), ("tests-passed", report.passed),
                               ("tests-failed", report.failed), ("tests-skipped", report.skipped)):
                ctx.set_property(key, value, PROPERTY_SOURCE)
        state = report.summary()
        if problems:
            result = worst(result, self.missing_report)
            state += f" ({problems[0]})"
        if report.failed:
            result = worst(result, Result.FAILURE)
        ctx.set_state(state if result == Result.SUCCESS else f"{state} ({result.label})")
        return result

    async def _read_reports(self, ctx: StepContext) -> tuple[TestReport, int, list[str]]:
        """The reports' combined totals, how many were read, and what went wrong."""
        report, read, problems = TestReport(), 0, []
        workdir = str(ctx.render(self.workdir))
        for pattern in self.junit:
            full = pattern if pattern.startswith("/") else posixpath.join(workdir, pattern)
            paths = await ctx.glob(full) if _GLOB_CHARS & set(pattern) else [full]
            if not paths:
                problems.append(f"no JUnit report matches {pattern}")
            for path in paths:
                sink = MemorySink()
                try:
                    await ctx.upload(path, sink, max_size=self.junit_maxsize)
                    report.add(parse_junit(bytes(sink.data)))
                    read += 1
                except (TransferError, ReportError) as exc:
                    problems.append(f"JUnit report {path}: {exc}")
        return report, read, problems
