"""The Git step's options: Buildbot's names, defaults and the problems checkconfig reports."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.domain.properties.renderables import Interpolate
from coordinator.domain.steps.source import Git


def test_defaults_are_buildbots() -> None:
    step = Git(repourl="https://example.org/r.git")
    expected = ("git", "incremental", None, "master", "build")
    assert (step.name, step.mode, step.method, step.branch, step.workdir) == expected
    assert step.haltOnFailure and step.errors == []
    assert Git(repourl="r", mode="full").method == "fresh"
    assert Git(repourl=Interpolate("%(prop:repo)s"), shallow=5, submodules=True).errors == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Git needs repourl="),
        ({"repourl": "r", "mode": "mirror"}, "mode must be 'incremental' or 'full'"),
        ({"repourl": "r", "mode": "full", "method": "copy"}, "method 'copy' is not valid with mode='full'"),
        ({"repourl": "r", "method": "clobber"}, "method 'clobber' is not valid with mode='incremental'"),
        ({"repourl": "r", "shallow": 0}, "shallow must be True, False or a depth >= 1"),
        ({"repourl": "r", "submodules": "yes"}, "submodules must be True or False"),
        ({"repourl": "r", "timeout": -1}, "timeout must be a number of seconds >= 0"),
    ],
)
def test_bad_options_are_reported(kwargs: dict[str, Any], message: str) -> None:
    errors = Git(**kwargs).errors
    assert any(message in e for e in errors), errors
