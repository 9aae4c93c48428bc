"""ChangeFilter, fileIsImportant/onlyImportant and AnyBranchScheduler (Buildbot semantics)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Any

from coordinator.domain.changes.filters import ChangeFilter, importance
from coordinator.domain.model import Change, NewBuildset
from coordinator.domain.scheduling.schedulers import (
    AnyBranchScheduler,
    ChangeScheduler,
    SingleBranchScheduler,
)
from tests.coordinator.fakes import FakeClock


def change(i: int = 1, **kw: Any) -> Change:
    values: dict[str, Any] = dict(author="a", revision=f"r{i}", branch="main", repository="repo",
                                  project="proj", category="", codebase="", files=[], id=i)
    values.update(kw)
    return Change(**values)


def test_change_filter_criteria_all_must_match() -> None:
    f = ChangeFilter(project="proj", branch=["main", "dev"])
    assert f.matches(change(branch="main")) and f.matches(change(branch="dev"))
    assert not f.matches(change(branch="other"))
    assert not f.matches(change(project="else"))
    assert ChangeFilter(branch_re=r"release/\d+").matches(change(branch="release/3"))
    assert not ChangeFilter(branch_re=r"release/\d+").matches(change(branch="main"))
    assert ChangeFilter(branch=re.compile("feat.*")).matches(change(branch="feature-x"))
    assert ChangeFilter(category_fn=lambda c: c.startswith("ci")).matches(change(category="ci-fast"))
    assert ChangeFilter(repository="repo", codebase="").matches(change())
    assert not ChangeFilter(filter_fn=lambda c: "skip" not in c.revision).matches(change(revision="skip-1"))


def test_change_filter_reports_bad_criteria() -> None:
    assert ChangeFilter(branchh="main").errors
    assert ChangeFilter(branch_re="(").errors
    assert ChangeFilter(branch="x").errors == []


def test_file_is_important_takes_globs_or_a_function() -> None:
    docs_only = change(files=["docs/index.md", "README.md"])
    code = change(files=["src/app.py", "docs/x.md"])
    by_glob = importance(["src/*", "*.toml"])
    assert by_glob is not None and by_glob(code) and not by_glob(docs_only)
    fn = importance(lambda c: len(c.files) > 1)
    assert fn is not None and fn(code)
    assert importance(None) is None


class Harness:
    def __init__(self, scheduler: ChangeScheduler) -> None:
        self.scheduler = scheduler
        self.clock = FakeClock()
        self.submitted: list[NewBuildset] = []
        self._spawned: list[asyncio.Future[Any]] = []

    async def _submit(self, bs: NewBuildset | None, commit: object = None) -> None:
        assert bs is not None
        self.submitted.append(bs)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        self._spawned.append(asyncio.ensure_future(aw))

    def feed(self, c: Change) -> Change:
        self.scheduler.on_change(c, self.clock, self._submit, self._spawn)
        return c

    async def buildsets(self) -> list[NewBuildset]:
        await asyncio.gather(*self._spawned)
        return list(self.submitted)


async def test_unimportant_changes_wait_for_an_important_one_and_do_not_start_the_timer() -> None:
    h = Harness(SingleBranchScheduler("s", branch="main", tree_stable_timer=10, builders=["b"],
                                      fileIsImportant=["src/*"]))
    docs = h.feed(change(1, files=["docs/a.md"]))
    h.clock.advance(60)
    assert await h.buildsets() == [] and h.clock.pending == 0  # no timer for an unimportant change
    code = h.feed(change(2, files=["src/a.py"]))
    h.clock.advance(10)
    (bs,) = await h.buildsets()
    assert bs.change_ids == [docs.id, code.id]  # the unimportant change rides along


async def test_only_important_drops_unimportant_changes() -> None:
    h = Harness(SingleBranchScheduler("s", branch="main", tree_stable_timer=None, builders=["b"],
                                      fileIsImportant=["src/*"], onlyImportant=True))
    h.feed(change(1, files=["docs/a.md"]))
    code = h.feed(change(2, files=["src/a.py"]))
    (bs,) = await h.buildsets()
    assert bs.change_ids == [code.id]


async def test_single_branch_scheduler_applies_its_change_filter() -> None:
    h = Harness(SingleBranchScheduler("s", tree_stable_timer=None, builders=["b"],
                                      change_filter=ChangeFilter(project="proj", branch="main")))
    h.feed(change(1, project="other"))
    h.feed(change(2, branch="dev"))
    wanted = h.feed(change(3))
    assert [bs.change_ids for bs in await h.buildsets()] == [[wanted.id]]


async def test_any_branch_scheduler_keeps_one_timer_per_branch() -> None:
    h = Harness(AnyBranchScheduler("any", builders=["b"], tree_stable_timer=10,
                                   change_filter=ChangeFilter(branch_re=r"(main|feature/.*)")))
    m1 = h.feed(change(1, branch="main"))
    h.clock.advance(5)
    f1 = h.feed(change(2, branch="feature/x"))
    h.feed(change(3, branch="unrelated"))
    h.clock.advance(5)  # main's timer fires; feature/x's was not reset by main
    (main_bs,) = await h.buildsets()
    assert main_bs.change_ids == [m1.id] and main_bs.sourcestamps[0].branch == "main"
    f2 = h.feed(change(4, branch="feature/x"))  # restarts only feature/x's timer
    h.clock.advance(9.9)
    assert len(await h.buildsets()) == 1
    h.clock.advance(0.1)
    _, feature_bs = await h.buildsets()
    assert feature_bs.change_ids == [f1.id, f2.id]
    assert feature_bs.sourcestamps[0].branch == "feature/x"
    assert "AnyBranchScheduler" in feature_bs.reason
    assert h.clock.pending == 0


async def test_any_branch_scheduler_branches_list() -> None:
    h = Harness(AnyBranchScheduler("any", builders=["b"], branches=["main", "dev"]))
    h.feed(change(1, branch="main"))
    h.feed(change(2, branch="topic"))
    h.feed(change(3, branch="dev"))
    assert [bs.sourcestamps[0].branch for bs in await h.buildsets()] == ["main", "dev"]


def test_checkconfig_reports_bad_filters_with_their_line(tmp_path: Any) -> None:
    import pytest

    from coordinator.config.loader import ConfigError, load_config

    path = tmp_path / "master.py"
    path.write_text(
        "from coordinator.config import *\n"
        "config = MasterConfig(\n"
        "    workers=[Worker('w', 's')],\n"
        "    builders=[Builder('b', workers=['w'], steps=[ShellCommand(command='true')])],\n"
        "    schedulers=[\n"
        "        AnyBranchScheduler('any', builders=['b'],\n"
        "                           change_filter=ChangeFilter(branchh='main')),\n"
        "        SingleBranchScheduler('s', builders=['b'], fileIsImportant=42),\n"
        "    ],\n"
        ")\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    messages = {(p.line, p.message.split(":")[0]) for p in err.value.problems}
    assert (6, "scheduler 'any'") in messages
    assert (8, "scheduler 's'") in messages
    assert any("branchh" in p.message for p in err.value.problems)
    assert any("fileIsImportant" in p.message for p in err.value.problems)
