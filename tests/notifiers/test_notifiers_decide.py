"""The pure decisions: which results mail for each mode, and who gets the mail."""

from __future__ import annotations

import pytest

from coordinator.domain.results import Result
from notifiers.decide import author_address, is_message_needed, recipients

S, W, F, X, C, R = (Result.SUCCESS, Result.WARNINGS, Result.FAILURE, Result.EXCEPTION,
                    Result.CANCELLED, Result.RETRY)
# One sequence of build results of a builder covering every transition that matters.
SEQUENCE = [S, S, F, F, S, W, F, X, C, W, W, S]


def decisions(mode: tuple[str, ...], results: list[Result]) -> list[bool]:
    out, previous = [], None
    for result in results:
        out.append(is_message_needed(mode, result, previous))
        if result not in (Result.CANCELLED, Result.RETRY):  # skipped when looking back (storage)
            previous = result
    return out


# For each mode: which builds of SEQUENCE send a message (1) and which do not (0).
TABLE = {
    #             S  S  F  F  S  W  F  X  C  W  W  S
    "all":       [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    "failing":   [0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0],
    "passing":   [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1],
    "warnings":  [0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0],
    "exception": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    "cancelled": [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    # FAILURE after anything but FAILURE (Buildbot: prev != FAILURE)
    "problem":   [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    # the result differs from the previous one; never on the first build, never for CANCELLED
    "change":    [0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1],
}


@pytest.mark.parametrize("mode", sorted(TABLE))
def test_every_mode_over_a_sequence_of_results(mode: str) -> None:
    assert decisions((mode,), SEQUENCE) == [bool(x) for x in TABLE[mode]]


def test_modes_combine_as_a_union_and_the_default_is_failing_passing_warnings() -> None:
    combined = decisions(("failing", "change"), SEQUENCE)
    expected = [bool(a or b) for a, b in zip(TABLE["failing"], TABLE["change"], strict=True)]
    assert combined == expected
    default = decisions(("failing", "passing", "warnings"), SEQUENCE)
    assert default == [r in (S, F, W) for r in SEQUENCE]


def test_problem_on_a_first_build_that_fails_and_not_on_retry() -> None:
    assert is_message_needed(("problem",), F, None)
    assert not is_message_needed(("change",), F, None)
    assert not is_message_needed(("failing", "passing", "warnings"), R, S)
    assert is_message_needed(("change",), R, S)


def test_author_addresses_and_lookup() -> None:
    assert author_address("Jane Doe <jane@x.org>") == "jane@x.org"
    assert author_address("jane@x.org") == "jane@x.org"
    assert author_address("jane") is None
    assert author_address("jane", "example.org") == "jane@example.org"
    assert author_address("Jane <jane@x.org>", "example.org") == "jane@x.org"
    table = {"jane": "j@corp.example"}
    assert author_address("jane", table.get) == "j@corp.example"
    assert author_address("bob", table.get) is None
    assert author_address("", "example.org") is None


def test_recipients_are_extra_plus_interested_users_without_duplicates() -> None:
    authors = ["Jane <jane@x.org>", "bob", "JANE@x.org", "nobody-known"]
    assert recipients(authors, ["ci@x.org"], True, None) == ["ci@x.org", "jane@x.org"]
    assert recipients(authors, ["ci@x.org"], True, "x.org") == [
        "ci@x.org", "jane@x.org", "bob@x.org", "nobody-known@x.org"]
    assert recipients(authors, ["ci@x.org"], False, "x.org") == ["ci@x.org"]
    assert recipients([], [], True, None) == []
