"""Build and step results, with Buildbot's codes and meaning."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Result(IntEnum):
    SUCCESS = 0
    WARNINGS = 1
    FAILURE = 2
    SKIPPED = 3
    EXCEPTION = 4
    RETRY = 5
    CANCELLED = 6

    @property
    def label(self) -> str:
        return self.name.lower()


# Worst-first order used to combine results (Buildbot's worst_status ordering).
_SEVERITY = [
    Result.SKIPPED,
    Result.SUCCESS,
    Result.WARNINGS,
    Result.FAILURE,
    Result.EXCEPTION,
    Result.RETRY,
    Result.CANCELLED,
]


def worst(a: Result, b: Result) -> Result:
    """The more severe of two results."""
    return a if _SEVERITY.index(a) >= _SEVERITY.index(b) else b


def is_good(result: Result) -> bool:
    return result in (Result.SUCCESS, Result.WARNINGS)


class ResultFlags(Protocol):
    """The flags that fold a result into an overall one (a step, or a ShellSequence's ShellArg)."""

    haltOnFailure: bool
    flunkOnFailure: bool
    warnOnFailure: bool
    warnOnWarnings: bool
    flunkOnWarnings: bool


def combine(build_result: Result, step: ResultFlags, step_result: Result) -> tuple[Result, bool]:
    """Fold a step's result into the build's (Buildbot's Build.stepDone); returns
    (new build result, whether the build must halt)."""
    halt = False
    overall = step_result
    if step_result == Result.FAILURE:
        overall = Result.SUCCESS
        if step.warnOnFailure:
            overall = Result.WARNINGS
        if step.flunkOnFailure:
            overall = Result.FAILURE
        halt = step.haltOnFailure
    elif step_result == Result.WARNINGS:
        overall = Result.WARNINGS if step.warnOnWarnings else Result.SUCCESS
        if step.flunkOnWarnings:
            overall = Result.FAILURE
    elif step_result in (Result.EXCEPTION, Result.RETRY, Result.CANCELLED):
        halt = True
    return worst(build_result, overall), halt
