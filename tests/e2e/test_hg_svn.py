"""HgPoller + Mercurial and SVNPoller + SVN end to end: real hg and svn repositories, a real
coordinator that polls them, and a real worker that checks the revisions out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2
from tests.coordinator.vcs_repos import HgRepo, SvnRepo, run
from tests.e2e.harness import FAILURE, SUCCESS, Cluster, Coordinator, describe_events, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def config(hg: Path, svn_url: str) -> str:
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("hg", workers=["w1"], steps=[
            Mercurial(repourl={str(hg)!r}, branchType="inrepo", mode="full", method="clean"),
            ShellCommand(name="show", command=["cat", "a0.txt"]),
        ]),
        Builder("svn", workers=["w1"], steps=[
            SVN(repourl={svn_url + "/trunk"!r}),
            ShellCommand(name="show", command=["cat", "f.txt"]),
        ]),
        Builder("hg-missing", workers=["w1"], steps=[Mercurial(repourl={str(hg) + "-gone"!r})]),
        Builder("svn-missing", workers=["w1"], steps=[SVN(repourl={svn_url + "/nothing"!r})]),
    ],
    schedulers=[
        AnyBranchScheduler("hgs", change_filter=ChangeFilter(project="hgproj"), tree_stable_timer=None,
                           builders=["hg"]),
        AnyBranchScheduler("svns", change_filter=ChangeFilter(project="svnproj"), tree_stable_timer=None,
                           builders=["svn"]),
        ForceScheduler("force", builders=["hg-missing", "svn-missing"]),
    ],
    change_source=[
        HgPoller({str(hg)!r}, pollInterval=0.2, pollAtLaunch=True, project="hgproj"),
        SVNPoller({svn_url!r}, split_file=split_file_branches, pollInterval=0.2, pollAtLaunch=True,
                  project="svnproj"),
    ],
)
"""


def prop(b: control_pb2.Build, name: str) -> object:
    return json.loads({p.name: p for p in b.properties}[name].value_json)


async def finished(coord: Coordinator, builder: str, number: int) -> control_pb2.Build:
    async def done() -> control_pb2.Build | None:
        builds = [b for b in await coord.list_builds(builder) if b.number == number and b.complete]
        return builds[0] if builds else None

    await poll(done, what=f"{builder} #{number} finished")
    return await coord.get_build(builder, number)  # with its properties


async def test_polled_hg_and_svn_revisions_are_built(cluster: Cluster, tmp_path: Path) -> None:
    hg = HgRepo(tmp_path / "hgrepo")
    hg.commit(1, "old")
    svn = SvnRepo(tmp_path)
    coord = await cluster.start_coordinator(config(hg.path, svn.url))
    worker = await cluster.start_worker(coord, "w1", "secret1")
    assert coord.process is not None
    await coord.process.wait_line(r"HgPoller:.*first poll: 1 branch head\(s\) recorded")
    await coord.process.wait_line(r"SVNPoller:.*first poll: revision 1 recorded")
    rec = await coord.record()

    [node] = hg.commit(1, "a")
    rev = svn.commit("trunk", "f.txt", "trunk file")
    b = await finished(coord, "hg", 1)
    assert b.result == SUCCESS, describe_events(rec.events)
    assert prop(b, "got_revision") == node and prop(b, "branch") == "default"
    assert (worker.basedir / "hg" / "build" / "a0.txt").read_text() == "a 0\n"
    b = await finished(coord, "svn", 1)
    assert b.result == SUCCESS, describe_events(rec.events)
    assert prop(b, "got_revision") == str(rev)
    assert (worker.basedir / "svn" / "build" / "f.txt").read_text() == "trunk file\n"

    # Second round: an update in place (an untracked file goes: mode full, method clean).
    (worker.basedir / "hg" / "build" / "junk.txt").write_text("x\n")
    hg.path.joinpath("a0.txt").write_text("changed\n")
    run(hg.path, "hg", "commit", "-q", "-m", "change a0")
    node2 = hg.node("tip")
    rev2 = svn.commit("trunk", "f.txt", "trunk file, again")
    b = await finished(coord, "hg", 2)
    assert b.result == SUCCESS and prop(b, "got_revision") == node2
    assert not (worker.basedir / "hg" / "build" / "junk.txt").exists()
    log = (await coord.read_log("hg", 2, "hg")).decode()
    assert "hg pull" in log and "hg --config extensions.purge= purge" in log
    b = await finished(coord, "svn", 2)
    assert b.result == SUCCESS and prop(b, "got_revision") == str(rev2)
    assert "svn update" in (await coord.read_log("svn", 2, "svn")).decode()

    forced = await coord.force("hg-missing")
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    b = await finished(coord, "hg-missing", 1)
    assert b.result == FAILURE
    assert "could not clone" in (await coord.read_log("hg-missing", 1, "hg")).decode()
    forced = await coord.force("svn-missing")
    await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    b = await finished(coord, "svn-missing", 1)
    assert b.result == FAILURE
    assert f"could not check out {svn.url}/nothing" in (await coord.read_log("svn-missing", 1, "svn")).decode()
