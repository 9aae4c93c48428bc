"""Buildbot configurations through coordinator.config.buildbot: what loads, what is reported at
which line, and the migration report of each fixture against its stored expectation
(tests/coordinator/buildbot_configs/*.expected; regenerate with GANTRY_UPDATE_EXPECTED=1 after a
deliberate change, and read the diff)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.config.buildbot.native import NotWritable
from coordinator.config.loader import ConfigError, load_config_noted
from coordinator.domain.scheduling.schedulers import SingleBranchScheduler

FIXTURES = Path(__file__).resolve().parent / "buildbot_configs"
ROOT = FIXTURES.parents[2]
IMPORT = ("from buildbot.plugins import", "from coordinator.config.buildbot import")


def master_cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "master.cfg"
    path.write_text(text.replace(*IMPORT))
    return path


def migration_text(path: Path) -> str:
    """What `checkconfig --from-buildbot` shows: the report, then the problems or the native config."""
    try:
        _, migration = load_config_noted(path)
        problems: list[str] = []
    except ConfigError as exc:
        assert exc.migration is not None
        migration, problems = exc.migration, [str(p) for p in exc.problems]
    out = migration.report()
    if problems:
        out += "Problems:\n" + "".join(f"  {p}\n" for p in problems)
    else:
        try:
            out += "Gantry-native configuration:\n" + migration.native_source()
        except NotWritable as exc:
            out += f"Not writable: {exc}\n"
    # Password hashes are salted afresh at each load.
    return re.sub(r"\$argon2id\$[^'\"]+", "<argon2 hash>", out.replace(str(path.parent), "<dir>"))


@pytest.mark.parametrize("name", ["sample", "tour", "triggerable", "interlocks", "mail"])
def test_migration_report_matches_its_expectation(tmp_path: Path, name: str) -> None:
    path = master_cfg(tmp_path, (FIXTURES / f"{name}.cfg").read_text())
    got = migration_text(path)
    expected = FIXTURES / f"{name}.expected"
    if os.environ.get("GANTRY_UPDATE_EXPECTED"):
        expected.write_text(got)
    assert got == expected.read_text()


def gantry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"},
    )


def test_the_written_native_config_loads_clean(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, (FIXTURES / "sample.cfg").read_text())
    native = tmp_path / "native" / "master.py"
    native.parent.mkdir()
    proc = gantry("checkconfig", "--from-buildbot", str(path), "--write", str(native))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote the Gantry-native configuration to {native}" in proc.stdout
    assert "Maps one-to-one" in proc.stdout and proc.stderr == ""
    assert "from coordinator.config import *" in native.read_text()
    assert "coordinator.config.buildbot" not in native.read_text()
    proc = gantry("checkconfig", str(native))
    assert proc.returncode == 0 and proc.stdout.strip().endswith("scheduler(s)"), proc.stderr
    assert "note:" not in proc.stdout


@pytest.mark.parametrize("name", ["sample", "triggerable", "mail"])
def test_the_native_config_is_the_same_configuration(tmp_path: Path, name: str) -> None:
    path = master_cfg(tmp_path, (FIXTURES / f"{name}.cfg").read_text())
    compat, migration = load_config_noted(path)
    native = tmp_path / "native.py"
    native.write_text(migration.native_source())
    plain, plain_migration = load_config_noted(native)
    assert plain_migration.notes() == [] and not plain_migration.is_buildbot
    assert [(b.name, b.workers, b.builddir, [(type(s), s.name) for s in b.steps]) for b in compat.builders] == [
        (b.name, b.workers, b.builddir, [(type(s), s.name) for s in b.steps]) for b in plain.builders
    ]
    assert [(type(s), s.name, s.builders) for s in compat.schedulers] == [
        (type(s), s.name, s.builders) for s in plain.schedulers
    ]
    assert [(w.name, w.secret, w.max_builds) for w in compat.workers] == [
        (w.name, w.secret, w.max_builds) for w in plain.workers
    ]
    def options(notifier: object) -> dict[str, object]:
        return {k: v for k, v in vars(notifier).items() if k not in ("defined_at", "gantry_native")}

    assert [options(n) for n in compat.notifiers] == [options(n) for n in plain.notifiers]
    assert (compat.listen, compat.db_url, compat.www, compat.title, compat.url) == (
        plain.listen, plain.db_url, plain.www, plain.title, plain.url
    )


def test_checkconfig_prints_notes_and_unsupported_options_with_their_lines(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, (FIXTURES / "sample.cfg").read_text())
    proc = gantry("checkconfig", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:86: note: c['titleURL'] is ignored" in proc.stdout
    assert f"{path}:25: note: c['protocols'] pb port -> listen='0.0.0.0:9989'" in proc.stdout

    # The tour with a GitHub login instead of its local user (Gantry has no OAuth2 login).
    tour = (FIXTURES / "tour.cfg").read_text()
    assert "util.UserPasswordAuth([('Alice','Password1')])" in tour
    tour = tour.replace("util.UserPasswordAuth([('Alice','Password1')])", "util.GitHubAuth('id', 'secret')")
    proc = gantry("checkconfig", str(master_cfg(tmp_path, tour)))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"{path}:109: not supported: util.GitHubAuth: run an OAuth2 proxy (e.g. oauth2-proxy) in front "
        "and use util.RemoteUserAuth (Gantry's Auth(proxy_header=...)), or local users",
        f"1 problem(s) in {path}",
    ]
    proc = gantry("checkconfig", "--from-buildbot", str(path), "--write", str(tmp_path / "native.py"))
    assert proc.returncode == 1 and "not written: fix the problems first" in proc.stderr
    assert "Not supported (1):" in proc.stdout and not (tmp_path / "native.py").exists()


CONFIG = """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "pass", max_builds=2, keepalive_interval=60)]
f = util.BuildFactory()
f.addStep(steps.ShellCommand(command=["true"], logEnviron=False,
                             logfiles={"test": "test.log"}))
f.addStep(steps.ShellCommand(command=["true"], someOption=1))
f.addStep(steps.Configure())
f.addStep(steps.PyFlakes(command=["pyflakes", "."]))
c['builders'] = [util.BuilderConfig(name="b", workername="w", factory=f, env={"A": "1"})]
c['schedulers'] = [schedulers.AnyBranchScheduler(name="any", builderNames=["b"],
                                                 treeStableTimer=0, reason="push")]
c['change_source'] = changes.PBChangeSource(port=9999)
c['protocols'] = {'pb': {'port': "tcp:9990:interface=127.0.0.1"}}
c['db'] = {'db_url': "mysql://user:pass@localhost/buildbot"}
c['www'] = dict(port=8010, change_hook_dialects={'github': {}, 'base': True})
c['collapseRequests'] = False
c['frobnicate'] = True
"""


def test_each_option_that_does_not_carry_over_is_reported_at_its_line(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, CONFIG)
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:5: not supported: steps.ShellCommand(logfiles=...): upload the files with steps.FileUpload "
        "after the command",
        f"{path}:7: not supported: steps.ShellCommand(someOption=...): Gantry's ShellCommand has no such option",
        f"{path}:9: not supported: steps.PyFlakes: run the tool with steps.ShellCommand (or subclass BuildStep, "
        "see docs/custom_step.md)",
        f"{path}:10: not supported: util.BuilderConfig(env=...): give each step env= "
        "(a dict shared by the steps works)",
        f"{path}:13: not supported: changes.PBChangeSource: Gantry polls Git, Mercurial and Subversion: use "
        "changes.GitPoller, HgPoller or SVNPoller, webhooks (c['www'] change_hook_dialects) or `gantry hook "
        "install`",
        f"{path}:15: not supported: c['db'] db_url mysql: Gantry stores in SQLite or PostgreSQL",
        f"{path}:16: not supported: c['www'] change hook dialect 'base': Gantry has bitbucketcloud, "
        "bitbucketserver, gitea, github, gitlab (or `gantry hook install`)",
        f"{path}:17: not supported: c['collapseRequests']: set collapseRequests= on each util.BuilderConfig",
        f"{path}:18: not supported: c['frobnicate']: Gantry knows no such configuration key",
    ]
    migration = err.value.migration
    assert migration is not None
    assert migration.notes() == [
        f"{path}:14: note: c['protocols'] pb port -> listen='127.0.0.1:9990' (gRPC: Gantry workers connect, "
        "buildbot-worker cannot; --listen overrides it)",
        f"{path}:3: note: worker.Worker(keepalive_interval=...) is ignored: Gantry workers heartbeat at the "
        "coordinator's --heartbeat interval",
        f"{path}:5: note: steps.ShellCommand(logEnviron=...) is ignored: Gantry does not write the "
        "environment into the log",
        f"{path}:11: note: schedulers.AnyBranchScheduler(reason=...) is ignored: Gantry records the scheduler "
        "that started a build, not a reason string",
    ]


def test_a_supported_config_becomes_gantry_objects(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "pass", max_builds=3, properties={"os": "linux"})]
f = util.BuildFactory([steps.ShellCommand(command=["make"], haltOnFailure=True)])
f.addSteps([steps.ShellCommand(command=util.Interpolate("echo %(prop:os)s")), steps.Configure()])
c['builders'] = [
    util.BuilderConfig(name="b", workernames=["w"], factory=f, workerbuilddir="bdir", tags=["x"]),
    {'name': 'd', 'workername': 'w', 'factory': f},
]
c['schedulers'] = [schedulers.SingleBranchScheduler(name="s", builderNames=["b"], treeStableTimer=30,
                                                    change_filter=util.ChangeFilter(branch="main"))]
c['protocols'] = {'pb': {'port': 9989}}
c['db'] = {'db_url': "sqlite:///state.sqlite"}
c['services'] = [reporters.MailNotifier(fromaddr="ci@example.org")]
c['buildbotURL'] = "https://ci.example.org/"
""")
    cfg, migration = load_config_noted(path)
    [w] = cfg.workers
    assert (w.name, w.secret, w.max_builds, w.properties) == ("w", "pass", 3, {"os": "linux"})
    b, d = cfg.builders
    assert (b.name, b.workers, b.builddir, b.tags) == ("b", ["w"], "bdir", ["x"])
    assert [s.name for s in b.steps] == ["shell", "shell_1", "configure"] == [s.name for s in d.steps]
    assert getattr(b.steps[2], "command", None) == ("./configure",) and b.steps[0].haltOnFailure is True
    assert d.workers == ["w"] and d.defined_at == (str(path.resolve()), 8)
    [s] = cfg.schedulers
    assert isinstance(s, SingleBranchScheduler) and s.change_filter is not None
    assert (s.name, s.builders, s.tree_stable_timer, s.change_filter.errors) == ("s", ["b"], 30, [])
    assert cfg.listen == "0.0.0.0:9989"
    assert cfg.db_url == f"sqlite:///{path.parent.resolve()}/state.sqlite"
    assert [n.name for n in cfg.notifiers] == ["MailNotifier"] and cfg.url == "https://ci.example.org/"
    assert migration.problems() == []


def test_a_native_config_has_no_migration_notes(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text("from coordinator.config import *\n"
                    "config = MasterConfig(workers=[Worker('w', 's')], listen='127.0.0.1:0', db_url='sqlite:///x.db')\n")
    cfg, migration = load_config_noted(path)
    assert migration.notes() == [] and not migration.is_buildbot
    assert cfg.db_url == f"sqlite:///{tmp_path.resolve()}/x.db" and cfg.listen == "127.0.0.1:0"


def test_subclassing_a_buildbot_step_is_reported_at_the_class_statement(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "p")]

class Count(steps.ShellCommand):
    pass

class Factory(util.BuildFactory):  # a plain class: fine
    pass

f = Factory([Count(command=["wc"]), steps.ShellCommand(command=["true"])])
c['builders'] = [util.BuilderConfig(name="b", workernames=["w"], factory=f)]
""")
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:5: not supported: subclassing steps.ShellCommand: Buildbot's step and component APIs "
        "differ from Gantry's: write it against Gantry's BuildStep (docs/custom_step.md) in a native "
        "configuration",
    ]


@pytest.mark.parametrize("import_line", ["from buildbot.plugins import *", "from coordinator.config import *"])
def test_a_master_cfg_with_another_import_line_says_which_one_loads_it(tmp_path: Path, import_line: str) -> None:
    path = tmp_path / "master.cfg"
    path.write_text((FIXTURES / "sample.cfg").read_text().replace("from buildbot.plugins import *", import_line))
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    [problem] = err.value.problems
    assert problem.line == (4 if "buildbot" in import_line else 18)
    assert problem.message.endswith("(a Buildbot master.cfg loads with `from coordinator.config.buildbot import *`)")


def test_a_reporters_generator_folds_into_its_mode_builders_and_tags(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['workers'] = [worker.Worker("w", "p")]
c['builders'] = [util.BuilderConfig(name="b", workernames=["w"],
                                    factory=util.BuildFactory([steps.ShellCommand(command=["true"])]))]
generator = reporters.BuildStatusGenerator(mode=('failing',), builders=["b"], tags=["t"])
summary = reporters.BuildSetStatusGenerator(mode=('problem',))
c['services'] = [
    reporters.MailNotifier(fromaddr="ci@example.org", generators=[generator]),
    reporters.MailNotifier(fromaddr="sets@example.org", generators=[summary], name="sets"),
    reporters.HttpStatusPush("http://example.org/hook", generators=[generator]),
]
""")
    cfg, _ = load_config_noted(path)
    mail, sets, push = cfg.notifiers
    assert (mail.mode, mail.builders, mail.tags) == (("failing",), ["b"], ["t"])
    assert (sets.mode, getattr(sets, "buildSetSummary", None)) == (("problem",), True)
    assert (push.mode, push.builders, push.tags) == (("failing",), ["b"], ["t"])

    path.write_text(path.read_text().replace(
        'builders=["b"], tags=["t"])', "message_formatter=reporters.MessageFormatter(template='x'))"
    ).replace("generators=[summary]", "generators=[generator, summary]"))
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:6: not supported: reporters.MessageFormatter: give MailNotifier subject=, body= and html= "
        "templates (docs/notifiers.md), a status push startDescription= and endDescription= (docs/reporters.md)",
        f"{path}:10: not supported: reporters.MailNotifier(generators=...): Gantry takes one "
        "BuildStatusGenerator or BuildSetStatusGenerator a reporter; make one reporter per generator",
    ]


def test_a_key_of_the_wrong_shape_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, "from buildbot.plugins import *\nc = BuildmasterConfig = {}\n\nc['workers'] = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    assert [str(p) for p in err.value.problems] == [f"{path}:4: c['workers'] must be a list, not 3"]


def test_a_reporters_own_problem_is_at_the_users_line(tmp_path: Path) -> None:
    path = master_cfg(tmp_path, """\
from buildbot.plugins import *
c = BuildmasterConfig = {}
c['services'] = [
    reporters.MailNotifier(fromaddr="ci@example.org", mode=("sometimes",)),
]
""")
    with pytest.raises(ConfigError) as err:
        load_config_noted(path)
    [problem] = err.value.problems
    assert (problem.line, "unknown mode 'sometimes'" in problem.message) == (4, True)


def test_from_buildbot_on_a_native_config_has_nothing_to_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coordinator.cli import checkconfig_main

    path = tmp_path / "master.py"
    path.write_text("from coordinator.config import *\nconfig = MasterConfig(workers=[Worker('w', 's')])\n")
    assert checkconfig_main(["--from-buildbot", str(path), "--write", str(tmp_path / "out.py")]) == 0
    assert capsys.readouterr().out == f"{path} is a Gantry-native configuration: nothing to migrate\n"
    assert not (tmp_path / "out.py").exists()
