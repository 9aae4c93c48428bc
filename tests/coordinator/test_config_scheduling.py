"""checkconfig for worker selection, collapsing and locks: each mistake with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordinator.config import MasterLock, WorkerLock
from coordinator.config.loader import ConfigError, load_config
from coordinator.domain.builds.locks import LockAccess

GOOD = textwrap.dedent('''\
    from coordinator.config import *
    deploy = MasterLock("deploy")
    cpu = WorkerLock("cpu", maxCount=2, maxCountForWorker={"w1": 4})
    config = MasterConfig(
        workers=[Worker("w1", "s")],
        builders=[
            Builder("b", workers=["w1"], worker_labels=["linux"], collapseRequests=False,
                    nextWorker=lambda b, ws, r: ws[0], canStartBuild=lambda b, w, r: True,
                    nextBuild=lambda b, rs: rs[-1], locks=[deploy.access("exclusive")],
                    steps=[ShellCommand("make", locks=[cpu])]),
            Builder("c", workers=["w1"], collapseRequests=lambda b, r1, r2: True, locks=[deploy],
                    steps=[ShellCommand("make")]),
        ],
    )
''')

BAD = textwrap.dedent('''\
    from coordinator.config import *
    deploy = MasterLock("deploy")
    other = WorkerLock("deploy")
    config = MasterConfig(
        workers=[Worker("w1", "s")],
        builders=[
            Builder("b", workers=["w1"], worker_labels="linux,mac", steps=[ShellCommand("make")]),
            Builder("c", workers=["w1"], nextWorker="w1", collapseRequests="yes", steps=[ShellCommand("make")]),
            Builder("d", workers=["w1"], locks=[deploy.access("shared"), "deploy"], steps=[ShellCommand("make")]),
            Builder("e", workers=["w1"], locks=[deploy], steps=[ShellCommand("make", locks=[other])]),
            Builder("f", workers=["w1"], locks=[MasterLock("m", maxCount=0)], steps=[ShellCommand("make")]),
        ],
    )
''')


def test_scheduling_options_load(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(GOOD)
    cfg = load_config(path)
    b = cfg.builders[0]
    assert b.worker_labels == ["linux"] and b.collapseRequests is False
    assert isinstance(b.locks[0], LockAccess) and b.locks[0].mode == "exclusive"


def test_scheduling_mistakes_have_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = [(p.line, p.message) for p in info.value.problems]
    assert all(p.file == str(path) for p in info.value.problems)
    assert got == [
        (7, "builder 'b': worker_labels must be a list of label strings such as ['linux'], not ['linux,mac']"),
        (8, "builder 'c': nextWorker must be a function, not 'w1'"),
        (8, "builder 'c': collapseRequests must be True, False or a function (builder, req1, req2) -> bool, not 'yes'"),
        (9, "builder 'd': lock 'deploy': access must be 'exclusive' or 'counting', not 'shared'"),
        (9, "builder 'd': locks must contain MasterLock(...) / WorkerLock(...) or lock.access(...), not 'deploy'"),
        (3, "lock 'deploy' is declared twice with different kinds or counts: MasterLock('deploy', maxCount=1) "
            "(line 2) and WorkerLock('deploy', maxCount=1); use one lock object"),
        (11, "builder 'f': lock 'm': maxCount must be a whole number >= 1, not 0"),
    ]


def test_bare_lock_means_counting_access() -> None:
    from coordinator.domain.builds.locks import accesses

    lock = MasterLock("x")
    assert accesses([lock]) == [LockAccess(lock, "counting")]
    assert WorkerLock("y", maxCountForWorker={"a": 3}).max_count("a") == 3
