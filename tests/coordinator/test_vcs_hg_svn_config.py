"""HgPoller, SVNPoller, Mercurial and SVN in a configuration file: Buildbot's names, every bad
option reported with its file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from coordinator.config import SVN, HgPoller, Mercurial, SVNPoller
from coordinator.config.loader import ConfigError, load_config


def test_valid_hg_and_svn_configuration(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(textwrap.dedent('''\
        from coordinator.config import *

        config = MasterConfig(
            workers=[Worker("w1", "s1")],
            builders=[Builder("b", workers=["w1"], steps=[
                Mercurial(repourl="https://hg.example.org/app", branchType="inrepo", mode="full"),
                SVN(repourl=Interpolate("svn://svn.example.org/lib/%(src::branch)s"), name="svn-lib"),
            ])],
            change_source=[
                HgPoller("https://hg.example.org/app", branches=True, bookmarks=["next"]),
                SVNPoller("svn://svn.example.org/lib", split_file=split_file_branches, histmax=10),
            ],
        )
    '''))
    cfg = load_config(path)
    hg, svn = cfg.change_source
    assert isinstance(hg, HgPoller) and isinstance(svn, SVNPoller)
    assert (hg.name, svn.name) == ("HgPoller:https://hg.example.org/app", "SVNPoller:svn://svn.example.org/lib")
    hg_step, svn_step = cfg.builders[0].steps
    assert isinstance(hg_step, Mercurial) and hg_step.method == "fresh"  # Buildbot's default method of full
    assert isinstance(svn_step, SVN) and (svn_step.name, svn_step.mode) == ("svn-lib", "incremental")


def test_bad_options_are_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(textwrap.dedent('''\
        from coordinator.config import *

        config = MasterConfig(
            workers=[Worker("w1", "s1")],
            builders=[Builder("b", workers=["w1"], steps=[
                Mercurial(repourl="", branchType="named"),
                SVN(repourl="svn://x", mode="full", method="copy", extra_args="--quiet"),
            ])],
            change_source=[
                HgPoller("https://hg.example.org/app", pollInterval=0, bookmarks=[""]),
                SVNPoller("svn://x", histmax=-1, split_file="trunk"),
                SVNPoller("svn://x"),
            ],
        )
    '''))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = [(p.line, p.message) for p in info.value.problems]
    assert (6, "step 'hg' of builder 'b': Mercurial needs repourl= (a URL, or a path on the worker), not ''") in got
    assert (6, "step 'hg' of builder 'b': branchType must be 'dirname' or 'inrepo', not 'named'") in got
    assert (7, "step 'svn' of builder 'b': method 'copy' is not valid with mode='full' "
               "(use 'clean' or 'fresh' or 'clobber')") in got
    assert (7, "step 'svn' of builder 'b': extra_args must be a list of strings, not '--quiet'") in got
    assert (10, "HgPoller 'https://hg.example.org/app': pollInterval must be seconds > 0, not 0") in got
    assert (10, "HgPoller 'https://hg.example.org/app': bookmarks must be a list of bookmark names, not ['']") in got
    assert (11, "SVNPoller 'svn://x': histmax must be a whole number >= 1, not -1") in got
    assert (11, "SVNPoller 'svn://x': split_file must be a function path -> (branch, path) or None, "
                "not 'trunk'") in got
    assert any(line == 12 and "two change sources are named 'SVNPoller:svn://x'" in m for line, m in got)
