"""What counts as a changed configuration object: what it is made of, not where it is written."""

from __future__ import annotations

from pathlib import Path

from coordinator.config.diff import diff, snapshot
from coordinator.config.loader import load_config
from coordinator.reconfig import sections

BASE = """from coordinator.config import *

def later(builder, requests):
    return requests[0]

config = MasterConfig(
    workers=[Worker("w1", "s", max_builds=2)],
    builders=[
        Builder("a", workers=["w1"], steps=[ShellCommand(name="t", command=["make", "test"])], nextBuild=later),
        Builder("b", workers=["w1"], steps=[ShellCommand(name="t", command=["true"])]),
    ],
    schedulers=[ForceScheduler("force", builders=["a", "b"])],
)
"""


def load(tmp_path: Path, text: str) -> dict[str, dict[str, object]]:
    path = tmp_path / f"master{abs(hash(text))}.py"
    path.write_text(text)
    return sections(load_config(path))


def test_the_same_objects_written_elsewhere_change_nothing(tmp_path: Path) -> None:
    old = load(tmp_path, BASE)
    moved = load(tmp_path, "\n\n# a comment moves every line\n" + BASE)
    assert not any(diff(old[k], moved[k]) for k in ("builders", "schedulers", "workers"))


def test_changed_commands_functions_and_capacities_are_seen(tmp_path: Path) -> None:
    old = load(tmp_path, BASE)
    new = load(
        tmp_path,
        BASE.replace('"make", "test"', '"make", "check"')
        .replace("max_builds=2", "max_builds=4")
        .replace("return requests[0]", "return requests[-1]"),
    )
    assert diff(old["builders"], new["builders"]).changed == ["a"]
    assert diff(old["workers"], new["workers"]).changed == ["w1"]


def test_added_and_removed() -> None:
    d = diff(snapshot({"a": 1, "b": 2}), snapshot({"b": 2, "c": 3}))
    assert (d.added, d.removed, d.changed) == (["c"], ["a"], [])
