"""Build and step results, with Buildbot's codes and meaning."""

from __future__ import annotations

from enum import IntEnum


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
