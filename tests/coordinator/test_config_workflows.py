"""Configuration of the workflow features: cancellers (and their mistakes, with FILE:LINE)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordinator.config.loader import ConfigError, load_config
from coordinator.domain.scheduling.cancellers import FailingBuildsetCanceller, OldBuildCanceller

HEAD = '''\
import re
from coordinator.config import *
W = [Worker("w1", "s")]
B = [Builder("test", workers=["w1"], steps=[ShellCommand("true")]),
     Builder("lint", workers=["w1"], steps=[ShellCommand("true")])]
'''


def load(tmp_path: Path, body: str) -> tuple[Path, object]:
    path = tmp_path / "master.py"
    path.write_text(HEAD + textwrap.dedent(body))
    try:
        return path, load_config(path)
    except ConfigError as exc:
        return path, exc


def test_cancellers_load_from_masterconfig_and_buildbot_services(tmp_path: Path) -> None:
    _, cfg = load(tmp_path, '''\
        config = MasterConfig(workers=W, builders=B, cancellers=[
            OldBuildCanceller("superseded", builders=["test"], branches=re.compile(r"(main|pr/.*)")),
            FailingBuildsetCanceller("fail-fast", builders=["lint"], cancel=["test"]),
        ])
    ''')
    assert not isinstance(cfg, ConfigError), cfg
    old, failing = cfg.cancellers  # type: ignore[attr-defined]
    assert isinstance(old, OldBuildCanceller) and old.watches("test", "pr/12") and not old.watches("test", "dev")
    assert old.branch_key("refs/changes/34/1234/5") == "refs/changes/34/1234"
    assert isinstance(failing, FailingBuildsetCanceller) and failing.cancels("test") and not failing.cancels("lint")
    _, cfg = load(tmp_path, '''\
        BuildmasterConfig = {"workers": W, "builders": B,
                             "services": [OldBuildCanceller("superseded", builders=["test"])]}
    ''')
    assert not isinstance(cfg, ConfigError), cfg
    assert [c.name for c in cfg.cancellers] == ["superseded"] and cfg.notifiers == []  # type: ignore[attr-defined]


def test_canceller_mistakes_name_file_and_line(tmp_path: Path) -> None:
    path, err = load(tmp_path, '''\
        config = MasterConfig(workers=W, builders=B, cancellers=[
            OldBuildCanceller("superseded", builders=["tset"]),
            FailingBuildsetCanceller("fail-fast", builders=["lint"], cancel=["nope"], branches="main"),
            OldBuildCanceller("superseded", builders=["test"]),
        ])
    ''')
    assert isinstance(err, ConfigError)
    first = HEAD.count("\n") + 2
    assert [str(p) for p in err.problems] == [
        f"{path}:{first}: OldBuildCanceller 'superseded' names unknown builder 'tset'",
        f"{path}:{first + 1}: FailingBuildsetCanceller 'fail-fast': branches must be None, a list of branch "
        "names, a re.compile(...) pattern or a function branch -> bool, not 'main'",
        f"{path}:{first + 1}: FailingBuildsetCanceller 'fail-fast' names unknown builder 'nope'",
        f"{path}:{first + 2}: two cancellers are named 'superseded'",
    ]


@pytest.mark.parametrize("value", [42, [None]])
def test_cancel_must_name_builders(value: object) -> None:
    assert FailingBuildsetCanceller("x", builders=["a"], cancel=value).errors  # type: ignore[arg-type]


def test_matrix_combinations_exclude_include_and_expansion() -> None:
    from coordinator.domain.builds.builders import Builder
    from coordinator.domain.scheduling.matrix import Matrices, Matrix
    from coordinator.domain.steps.base import ShellCommand

    m = Matrix(python=["3.11", "3.12"], os=["linux", "arm"], exclude=[{"python": "3.11", "os": "arm"}],
               include=[{"python": "3.13", "os": "linux"}], labels=["os"])
    assert m.errors == []
    assert m.combinations() == [{"python": "3.11", "os": "linux"}, {"python": "3.12", "os": "linux"},
                                {"python": "3.12", "os": "arm"}, {"python": "3.13", "os": "linux"}]
    b = Builder("test", workers=["w"], steps=[ShellCommand("true")], worker_labels=["fast"],
                properties={"x": 1}, matrix=m, fail_fast=True)
    groups = Matrices([b, Builder("docs", workers=["w"], steps=[ShellCommand("true")])])
    names = ["test@3.11,linux", "test@3.12,linux", "test@3.12,arm", "test@3.13,linux"]
    assert [x.name for x in groups.builders] == [*names, "docs"]
    arm = groups.builders[2]
    assert arm.properties == {"x": 1, "python": "3.12", "os": "arm"}
    assert list(arm.worker_labels) == ["fast", "arm"] and arm.builddir == "test_3.12_arm"
    assert groups.names(["docs", "test"]) == ["docs", *names]
    (ff,) = groups.fail_fast
    assert ff.builders == names and ff.cancel == names
    rule = FailingBuildsetCanceller("x", builders=["test"], cancel=["docs"])
    expanded = groups.rules([rule])
    assert expanded[0].builders == names and rule.builders == ["test"]  # a copy; the config is untouched


def test_matrix_mistakes(tmp_path: Path) -> None:
    path, err = load(tmp_path, '''\
        M = Matrix(os=["linux", "a b"], labels=["cpu"])
        config = MasterConfig(workers=W, builders=[
            Builder("m", workers=["w1"], steps=[ShellCommand("true")], matrix=M),
            Builder("n", workers=["w1"], steps=[ShellCommand("true")], fail_fast=True),
            Builder("o", workers=["w1"], steps=[ShellCommand("true")],
                    matrix=Matrix(os=["x"], exclude=[{"os": "x"}])),
        ])
    ''')
    assert isinstance(err, ConfigError)
    line = HEAD.count("\n") + 3
    messages = [(p.line, p.message) for p in err.problems]
    assert messages == [
        (line, "builder 'm': axis 'os': values must use letters, digits, '_', '-', '.' (they name the "
               "combination's builder), not ['linux', 'a b']"),
        (line, "builder 'm': labels must list axes of the matrix (os), not ['cpu']"),
        (line + 1, "builder 'n': fail_fast needs a matrix (it stops the other combinations)"),
        (line + 2, "builder 'o': the matrix has no combination left after exclude"),
    ]


def test_a_notifier_naming_a_matrix_builder_hears_its_combinations() -> None:
    from coordinator.domain.builds.builders import Builder
    from coordinator.domain.scheduling.matrix import Matrices, Matrix
    from coordinator.domain.steps.base import ShellCommand
    from notifiers import HttpStatusPush

    m = Matrices([Builder("t", workers=["w"], steps=[ShellCommand("true")], matrix=Matrix(os=["a", "b"]))])
    push = HttpStatusPush("http://127.0.0.1:1/hook", builders=["t", "other"])
    plain = HttpStatusPush("http://127.0.0.1:1/hook2")
    seen, untouched = m.filtering([push, plain])
    assert seen.builders == ["t@a", "t@b", "other"] and push.builders == ["t", "other"]
    assert untouched is plain


def test_a_try_scheduler_needs_builders_that_can_apply_a_patch(tmp_path: Path) -> None:
    path, err = load(tmp_path, '''\
        G = Builder("g", workers=["w1"], steps=[Git(repourl="/r"), ShellCommand("true")])
        config = MasterConfig(workers=W, builders=[*B, G], schedulers=[
            TryScheduler("try", builderNames=["g", "lint"], max_patch_size=0),
        ])
    ''')
    assert isinstance(err, ConfigError)
    line = HEAD.count("\n") + 3
    assert [(p.line, p.message) for p in err.problems] == [
        (line, "scheduler 'try': max_patch_size must be a number of bytes from 1 to 12582912, not 0"),
        (line, "TryScheduler 'try': builder 'lint' has no Git step to apply a try patch"),
    ]
