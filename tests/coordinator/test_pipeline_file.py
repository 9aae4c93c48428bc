"""Pipeline files checked without a build: every problem names FILE:LINE (PyYAML's marks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.domain.steps.base import ShellCommand
from coordinator.domain.steps.pipeline import KeepArtifacts, PipelineInvalid, build_steps
from coordinator.pipeline_yaml import parse_pipeline

F = ".gantry/pipeline.yml"


def steps_of(text: str, allowed: tuple[str, ...] = ("token",)) -> list[object]:
    return list(build_steps(parse_pipeline(text, F), F, allowed, "ci"))


def problem(text: str) -> str:
    with pytest.raises(PipelineInvalid) as info:
        steps_of(text)
    return str(info.value)


def test_a_valid_file_gives_shell_steps_with_their_options() -> None:
    a, b, keep = steps_of(
        "env: {A: '1', 'ON': true}\n"
        "steps:\n"
        "  - {name: one, run: make, timeout: 30, workdir: build/src, haltOnFailure: false}\n"
        "  - name: two\n"
        "    run: [python, -m, pytest]\n"
        "    env: {A: '2', T: {secret: token}}\n"
        "    alwaysRun: true\n"
        "    artifacts: dist/*.whl\n"
    )
    assert isinstance(a, ShellCommand) and a.command == "make" and a.timeout == 30 and a.workdir == "build/src"
    assert a.env == {"A": "1", "ON": "true"} and not a.haltOnFailure and not a.alwaysRun
    assert isinstance(b, ShellCommand) and b.command == ["python", "-m", "pytest"] and b.haltOnFailure
    assert b.env["A"] == "2" and repr(b.env["T"]) == "Secret('token')" and b.alwaysRun
    assert isinstance(keep, KeepArtifacts) and keep.patterns == ["dist/*.whl"] and keep.name == "two artifacts"


@pytest.mark.parametrize(("text", "expected"), [
    ("steps:\n  - name: a\n    run: [unclosed\n", f"{F}:4: not valid YAML: while parsing a flow sequence "),
    ("", f"{F}:1: the pipeline file is empty"),
    ("steps: []\n", f"{F}:1: 'steps' must be a non-empty list of steps"),
    ("steps:\n  - name: a\n    run: x\n    worker: big\n",
     f"{F}:4: 'worker': a pipeline cannot choose workers: the builder's configuration does"),
    ("master: {run: rm -rf /}\nsteps:\n  - {name: a, run: x}\n",
     f"{F}:1: 'master': a pipeline cannot run commands on the coordinator"),
    ("steps:\n  - {name: a, run: x}\n  - {name: a, run: y}\n", f"{F}:3: two steps are named 'a'"),
    ("steps:\n  - name: a\n", f"{F}:2: a step needs 'run'"),
    ("steps:\n  - {name: a, run: x, workdir: ../up}\n", f"{F}:2: workdir must be a relative path without '..'"),
    ("steps:\n  - name: a\n    run: x\n    env:\n      T: {secret: other}\n",
     f"{F}:5: secret 'other' is not allowed for builder 'ci' (its Pipeline(secrets=[...]) allows: token)"),
    ("steps:\n  - name: a\n    run: x\n    name: b\n", f"{F}:4: 'name' is given twice"),
    ("steps:\n  - {name: a, run: x, alwaysRun: yes please}\n", f"{F}:2: alwaysRun must be true or false"),
    ("env:\n  ON: 1\nsteps:\n  - {name: a, run: x}\n", f"{F}:2: key 'ON' (YAML reads it as True; quote it)"),
    ("steps:\n  - {name: a, run: true}\n", f"{F}:2: run must be a string, not the YAML boolean true"),
])
def test_problems_name_file_and_line(text: str, expected: str) -> None:
    assert problem(text).startswith(expected)


def test_the_manuals_example_is_valid() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text()
    (example,) = [block.split("```", 1)[0] for block in page.split("```yaml\n")[1:]]
    steps = build_steps(parse_pipeline(example, F), F, ["pypi_token"], "app")
    assert [s.name for s in steps] == ["install", "test", "wheel", "wheel artifacts", "publish", "clean"]
    with pytest.raises(PipelineInvalid, match=r":20: secret 'pypi_token' is not allowed for builder 'app'"):
        build_steps(parse_pipeline(example, F), F, [], "app")


def test_a_step_may_not_take_the_name_of_one_of_the_builders_own() -> None:
    text = "steps:\n  - {name: test, run: x}\n  - {name: git, run: y}\n"
    with pytest.raises(PipelineInvalid, match=r":3: the builder already has a step named 'git'"):
        build_steps(parse_pipeline(text, F), F, [], "ci", ["git", "pipeline"])
