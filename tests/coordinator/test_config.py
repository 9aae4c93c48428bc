"""The configuration loader and `gantry checkconfig`: every problem, with its file and line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coordinator.config import MasterConfig
from coordinator.config.loader import ConfigError, ConfigProblem, load_config

ROOT = Path(__file__).resolve().parents[2]

VALID = '''\
from coordinator.config import (
    Builder, ForceScheduler, MasterConfig, ShellCommand, SingleBranchScheduler, Worker,
)

config = MasterConfig(
    title="Test",
    workers=[Worker("w1", "s1", max_builds=2), Worker("w2", password="s2")],
    builders=[
        Builder(
            "runtests",
            workers=["w1", "w2"],
            steps=[
                ShellCommand(name="checkout", command=["git", "status"], haltOnFailure=True),
                ShellCommand(name="test", command="make test", timeout=60, maxTime=600),
            ],
        ),
        Builder("docs", workers=["w2"], steps=[ShellCommand(["make", "docs"])]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=30, builders=["runtests", "docs"]),
        ForceScheduler("force", builders=["runtests"]),
    ],
)
'''

# Each mistake carries a marker comment on the line it must be reported at.
BROKEN = '''\
from coordinator.config import *

config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[
        Builder(  # L:unknown-worker
            "compile",
            workers=["w1", "ghost"],
            steps=[
                ShellCommand(name="ok", command=["make"]),
                ShellCommand(  # L:empty-command
                    name="empty",
                    command="",
                ),
            ],
        ),
        Builder("compile", workers=["w1"], steps=[ShellCommand(["true"])]),  # L:duplicate
    ],
    schedulers=[
        SingleBranchScheduler("sbs", branch="main", tree_stable_timer=-5,  # L:timer
                              builders=["compile"]),
        ForceScheduler("force", builders=["compile", "nosuch"]),  # L:unknown-builder
        Nightly("nightly", ["compile"], minute=75,  # L:nightly-minute
                hour=3, timezone="Europe/Berlin"),
        Nightly("tz", ["compile"], hour=3, timezone="Mars/Olympus"),  # L:nightly-tz
        Periodic("every", ["compile"], periodicBuildTimer=-1),  # L:periodic
    ],
)
'''

EXPECTED = {  # marker -> a fragment of the message
    "unknown-worker": "builder 'compile' uses unknown worker 'ghost'",
    "empty-command": "step 'empty' of builder 'compile': command must not be empty",
    "duplicate": "builder 'compile' is defined twice",
    "timer": "tree_stable_timer must be None or seconds >= 0, not -5",
    "unknown-builder": "scheduler 'force' names unknown builder 'nosuch'",
    "nightly-minute": "scheduler 'nightly': minute values must be between 0 and 59, not 75",
    "nightly-tz": "scheduler 'tz': unknown timezone 'Mars/Olympus'",
    "periodic": "scheduler 'every': periodicBuildTimer must be a number of seconds > 0, not -1",
}


def line_of(text: str, marker: str) -> int:
    (line,) = [i for i, t in enumerate(text.splitlines(), 1) if f"# L:{marker}" in t]
    return line


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_a_valid_file_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "master.py", VALID))
    assert isinstance(cfg, MasterConfig) and cfg.title == "Test"
    assert [(w.name, w.secret, w.max_builds) for w in cfg.workers] == [("w1", "s1", 2), ("w2", "s2", 1)]
    assert [b.name for b in cfg.builders] == ["runtests", "docs"]
    runtests = cfg.builders[0]
    assert [s.name for s in runtests.steps] == ["checkout", "test"]
    assert runtests.steps[0].haltOnFailure and runtests.steps[1].max_time == 600  # type: ignore[attr-defined]
    assert runtests.builddir == "runtests"
    assert [s.name for s in cfg.schedulers] == ["main", "force"]


def test_buildbot_style_dict_loads(tmp_path: Path) -> None:
    text = VALID.replace("config = MasterConfig(", "BuildmasterConfig = dict(")
    cfg = load_config(write(tmp_path, "master.cfg.py", text))
    assert cfg.title == "Test" and len(cfg.builders) == 2


def test_every_mistake_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "master.py", BROKEN)
    problems = problems_of(path)
    assert {p.file for p in problems} == {str(path)}
    found = {(p.line, p.message) for p in problems}
    for marker, fragment in EXPECTED.items():
        line = line_of(BROKEN, marker)
        assert any(ln == line and fragment in msg for ln, msg in found), (marker, line, sorted(found))
    assert len(problems) == len(EXPECTED), sorted(found)
    assert str(problems[0]) == f"{path}:{problems[0].line}: {problems[0].message}"


def test_more_mistakes(tmp_path: Path) -> None:
    text = textwrap.dedent('''\
        from coordinator.config import *
        config = MasterConfig(
            workers=[Worker("bad name", ""), Worker("w", "s", max_builds=0)],
            builders=[Builder("b", workers=[], steps=[])],
            schedulers=[SingleBranchScheduler("s", builders=[]), SingleBranchScheduler("s", builders=["b"])],
        )
    ''')
    messages = [(p.line, p.message) for p in problems_of(write(tmp_path, "m.py", text))]
    assert messages == [
        (3, "worker name 'bad name' is not valid: use letters, digits, '_', '-', '.'"),
        (3, "worker 'bad name' needs a secret (a non-empty string)"),
        (3, "worker 'w': max_builds must be a whole number >= 1, not 0"),
        (4, "builder 'b' has no workers"),
        (4, "builder 'b' has no steps"),
        (5, "scheduler 's' has no builders"),
        (5, "scheduler 's' is defined twice"),
    ]


def test_syntax_error_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace('title="Test",', 'title="Test" +,')
    path = write(tmp_path, "master.py", text)
    (problem,) = problems_of(path)
    assert (problem.file, problem.line) == (str(path), 6)
    assert problem.message.startswith("syntax error")


def test_name_error_reports_its_line(tmp_path: Path) -> None:
    text = VALID.replace('ShellCommand(["make", "docs"])', "ShelCommand(['make', 'docs'])")
    path = write(tmp_path, "master.py", text)
    (problem,) = problems_of(path)
    assert (problem.file, problem.line) == (str(path), 17)
    assert problem.message == "NameError: name 'ShelCommand' is not defined"


def test_missing_file_and_missing_config(tmp_path: Path) -> None:
    (missing,) = problems_of(tmp_path / "nope.py")
    assert missing.message == "no such configuration file"
    (empty,) = problems_of(write(tmp_path, "empty.py", "x = 1\n"))
    assert "config = MasterConfig(...)" in empty.message


# ------------------------------------------------------------------------------------ the CLI


def checkconfig(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "checkconfig", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_checkconfig_cli_reports_problems_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "master.py", BROKEN)
    proc = checkconfig(path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    for marker, fragment in EXPECTED.items():
        assert f"{path}:{line_of(BROKEN, marker)}: " in proc.stderr
        assert any(fragment in ln for ln in lines), (fragment, lines)


@pytest.mark.parametrize(
    ("old", "new", "line", "what"),
    [
        ('title="Test",', 'title="Test" +,', 6, "syntax error"),
        ('ShellCommand(["make", "docs"])', "ShelCommand(['make', 'docs'])", 17, "NameError"),
    ],
)
def test_checkconfig_cli_on_broken_python(tmp_path: Path, old: str, new: str, line: int, what: str) -> None:
    path = write(tmp_path, "master.py", VALID.replace(old, new))
    proc = checkconfig(path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{path}:{line}: {what}" in proc.stderr


def test_checkconfig_cli_accepts_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path, "master.py", VALID)
    proc = checkconfig(path)
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stdout and "2 builder(s)" in proc.stdout
    assert proc.stderr == ""


def test_step_options_and_renderables_are_checked_with_their_line(tmp_path: Path) -> None:
    text = textwrap.dedent('''\
        from coordinator.config import *
        config = MasterConfig(
            workers=[Worker("w", "s")],
            builders=[Builder("b", workers=["w"], steps=[
                ShellCommand(name="ok", command=["echo", Interpolate("%(prop:x)s")], doStepIf=lambda c: 1),
                ShellCommand(name="bad", command="x", doStepIf="no",
                             decodeRC={0: "fine"}),
            ])],
        )
    ''')
    messages = [(p.line, p.message) for p in problems_of(write(tmp_path, "m.py", text))]
    assert messages == [
        (6, "step 'bad' of builder 'b': doStepIf must be True, False or a function, not 'no'"),
        (6, "step 'bad' of builder 'b': decodeRC must map exit codes (int) to results such as "
            "SUCCESS, not {0: 'fine'}"),
    ]


def test_change_sources_are_checked_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(textwrap.dedent('''\
        from coordinator.config import *

        config = MasterConfig(
            workers=[Worker("w1", "s1")],
            builders=[Builder("b", workers=["w1"], steps=[ShellCommand(["true"])])],
            change_source=[
                GitPoller("https://x/repo.git", branches=["main"], pollInterval=60),
                GitPoller("", pollInterval=-1),
                GitPoller("https://x/repo.git", branches=True),
                "git://not-a-poller",
            ],
        )
    '''))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = [(p.line, p.message) for p in info.value.problems]
    assert (8, "GitPoller '': repourl must be a repository URL or path, not ''") in got
    assert (8, "GitPoller '': pollInterval must be seconds > 0, not -1") in got
    assert any(line == 9 and "two change sources are named 'GitPoller:https://x/repo.git'" in m for line, m in got)
    assert any(line == 3 and "change_source must contain GitPoller(...) objects" in m for line, m in got)
    assert len(got) == 4


def test_a_single_change_source_and_the_buildbot_dict_key(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(VALID + '\nfrom coordinator.config import GitPoller\n'
                    'BuildmasterConfig = {"workers": config.workers, "builders": config.builders,\n'
                    '                     "change_source": GitPoller("/srv/other.git", branches=True)}\n'
                    'del config\n')
    cfg = load_config(path)
    assert [s.repourl for s in cfg.change_source] == ["/srv/other.git"]


def test_transfer_and_test_step_options_are_checked(tmp_path: Path) -> None:
    text = textwrap.dedent('''\
        from coordinator.config import *
        config = MasterConfig(
            workers=[Worker("w", "s")],
            builders=[Builder("b", workers=["w"], steps=[
                FileUpload(workersrc="", maxsize=-1),
                FileDownload(name="dl", mastersrc="a", workerdest="b", mode="644"),
                DirectoryUpload(name="dir", workersrc="d", mode=0o644, workdir="/abs"),
                Test(junit=[], junit_maxsize=0),
                FileUpload(name="fine", workersrc="out.bin", masterdest="x/out.bin", maxsize=1000, mode=0o644),
            ])],
        )
    ''')
    messages = [(p.line, p.message) for p in problems_of(write(tmp_path, "m.py", text))]
    assert messages == [
        (5, "step 'upload' of builder 'b': maxsize must be a number of bytes > 0 (or None), not -1"),
        (5, "step 'upload' of builder 'b': workersrc must be a non-empty path, not ''"),
        (6, "step 'dl' of builder 'b': mode must be permission bits such as 0o644 (or None), not '644'"),
        (7, "step 'dir' of builder 'b': workdir must be a relative path inside the build directory, not '/abs'"),
        (7, "step 'dir' of builder 'b': DirectoryUpload has no mode option (files keep their own)"),
        (8, "step 'test' of builder 'b': junit must be a path or glob (or a list of them), not []"),
        (8, "step 'test' of builder 'b': junit_maxsize must be a number of bytes > 0, not 0"),
    ]
