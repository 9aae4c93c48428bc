"""Results and how a step's result folds into its build's (Buildbot's rules)."""

from __future__ import annotations

import itertools

import pytest

from coordinator.domain.results import Result, combine, is_good, worst
from coordinator.domain.steps.base import BuildStep

S, W, F, SK, E, R, C = (Result.SUCCESS, Result.WARNINGS, Result.FAILURE, Result.SKIPPED,
                        Result.EXCEPTION, Result.RETRY, Result.CANCELLED)
# Buildbot's worst_status order, best first.
ORDER = [SK, S, W, F, E, R, C]


def test_codes_are_buildbots() -> None:
    assert [int(r) for r in (S, W, F, SK, E, R, C)] == [0, 1, 2, 3, 4, 5, 6]
    assert F.label == "failure"


@pytest.mark.parametrize(("a", "b"), list(itertools.product(ORDER, ORDER)))
def test_worst_follows_buildbot_severity(a: Result, b: Result) -> None:
    expected = ORDER[max(ORDER.index(a), ORDER.index(b))]
    assert worst(a, b) == expected == worst(b, a)


def test_worst_examples() -> None:
    assert worst(S, SK) == S  # a skipped step does not spoil a build
    assert worst(W, F) == F
    assert worst(F, E) == E
    assert worst(E, R) == R
    assert worst(R, C) == C  # cancelled is the worst of all
    assert is_good(S) and is_good(W) and not is_good(F) and not is_good(SK)


FLAGS = ("haltOnFailure", "flunkOnFailure", "warnOnFailure", "warnOnWarnings", "flunkOnWarnings")


def step_with(**flags: bool) -> BuildStep:
    return BuildStep(name="s", **flags)  # type: ignore[arg-type]


def reference(previous: Result, flags: dict[str, bool], result: Result) -> tuple[Result, bool]:
    """buildbot.process.results.computeResultAndTermination, transcribed."""
    possible, terminate = result, False
    if result == F:
        if not flags["flunkOnFailure"]:
            possible = S
        if flags["warnOnFailure"]:
            possible = W
        if flags["flunkOnFailure"]:
            possible = F
        if flags["haltOnFailure"]:
            terminate = True
    elif result == W:
        possible = W if flags["warnOnWarnings"] else S
        if flags["flunkOnWarnings"]:
            possible = F
    elif result in (E, R, C):
        terminate = True
    return worst(previous, possible), terminate


def test_combine_matches_buildbot_for_every_flag_combination() -> None:
    mismatches = []
    for bits in itertools.product([False, True], repeat=len(FLAGS)):
        flags = dict(zip(FLAGS, bits, strict=True))
        for step_result in ORDER:
            for previous in (S, W, F):
                got = combine(previous, step_with(**flags), step_result)
                want = reference(previous, flags, step_result)
                if got != want:
                    mismatches.append((flags, previous, step_result, got, want))
    assert mismatches == []


# The readable table: (flags, step result) -> (build result from SUCCESS, halt).
TABLE = [
    ({}, S, S, False),
    ({}, F, F, False),  # defaults: flunkOnFailure=True, haltOnFailure=False
    ({"haltOnFailure": True}, F, F, True),
    ({"flunkOnFailure": False}, F, S, False),
    ({"flunkOnFailure": False, "warnOnFailure": True}, F, W, False),
    ({"flunkOnFailure": True, "warnOnFailure": True}, F, F, False),  # flunk wins over warn
    ({"flunkOnFailure": False, "haltOnFailure": True}, F, S, True),  # halt even if it does not flunk
    ({}, W, W, False),  # defaults: warnOnWarnings=True
    ({"warnOnWarnings": False}, W, S, False),
    ({"flunkOnWarnings": True}, W, F, False),
    ({"warnOnWarnings": False, "flunkOnWarnings": True}, W, F, False),
    ({"haltOnFailure": True}, W, W, False),  # warnings never halt
    ({}, SK, S, False),
    ({}, E, E, True),
    ({}, R, R, True),
    ({}, C, C, True),
    ({"flunkOnFailure": False, "haltOnFailure": False}, E, E, True),  # flags do not soften exceptions
]


@pytest.mark.parametrize(("flags", "step_result", "build_result", "halt"), TABLE)
def test_combine_table(flags: dict[str, bool], step_result: Result, build_result: Result, halt: bool) -> None:
    assert combine(S, step_with(**flags), step_result) == (build_result, halt)


def test_combine_never_improves_the_build() -> None:
    assert combine(F, step_with(), S) == (F, False)
    assert combine(W, step_with(flunkOnFailure=False), F) == (W, False)
    assert combine(E, step_with(), W) == (E, False)


def test_step_defaults_are_buildbots() -> None:
    s = BuildStep(name="x")
    assert (s.haltOnFailure, s.flunkOnFailure, s.warnOnFailure, s.warnOnWarnings, s.flunkOnWarnings,
            s.alwaysRun) == (False, True, False, True, False, False)
    assert BuildStep(name="x", haltOnFailure="yes").errors == [  # type: ignore[arg-type]
        "haltOnFailure must be True or False, not 'yes'"
    ]
