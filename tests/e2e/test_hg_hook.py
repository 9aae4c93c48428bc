"""`gantry hook install` in a real Mercurial repository: a `changegroup` hook in .hg/hgrc
submits each pushed changeset to a real coordinator; spooled while it is down, flushed once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from clients.hg_push import HOOK_NAME
from tests.coordinator.vcs_repos import ENV, HgRepo
from tests.e2e.harness import Cluster, Coordinator, child_env, poll, run_cli
from tests.e2e.test_hook import changes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "hi"])])],
    schedulers=[SingleBranchScheduler("default", branch="default", tree_stable_timer=None, builders=["b"])],
)
"""


def push(clone: HgRepo, server: Path) -> str:
    """hg push as a user runs it (the server's hook runs with this checkout on PYTHONPATH)."""
    proc = subprocess.run(["hg", "push", "-q", str(server)], cwd=clone.path, capture_output=True, text=True,
                          env={**child_env(), **{k: ENV[k] for k in ("HGPLAIN", "HGUSER")}}, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


async def install(coord: Coordinator, repo: Path, *extra: str) -> str:
    code, out, err = await run_cli("hook", "install", "--repo", str(repo), "--coordinator", coord.address, *extra)
    assert code == 0, err.decode()
    return out.decode()


async def test_pushed_changesets_become_changes_once(cluster: Cluster, tmp_path: Path) -> None:
    server = HgRepo(tmp_path / "server")
    hgrc = server.path / ".hg" / "hgrc"
    hgrc.write_text("[hooks]\nchangegroup.mine = true\n")  # the user's own hook stays
    coord = await cluster.start_coordinator(CONFIG)
    out = await install(coord, server.path, "--project", "proj", "--revlink", "https://hg.example.org/rev/{revision}")
    assert f"installed the {HOOK_NAME} hook in {hgrc}" in out
    assert "updated" in await install(coord, server.path, "--project", "proj",
                                      "--revlink", "https://hg.example.org/rev/{revision}")
    text = hgrc.read_text()
    assert text.count(HOOK_NAME) == 1 and "changegroup.mine = true" in text

    clone = HgRepo(tmp_path / "clone", clone_of=server.path)
    nodes = clone.commit(3, "a")
    said = push(clone, server.path)
    assert "gantry: 3 change(s) sent" in said

    async def arrived() -> list:
        got = await changes(coord)
        return got if len(got) == 3 else []

    got = await poll(arrived, what="3 changes")
    assert [(c.revision, c.branch) for c in got] == [(n, "default") for n in nodes]
    first = got[0]
    assert (first.author, first.comments, list(first.files), first.project) == (
        "Jane Doe <jane@example.org>", "a commit 0\n\nbody 0", ["a0.txt"], "proj")
    assert first.repository == str(server.path) and first.revlink == f"https://hg.example.org/rev/{nodes[0]}"

    # The coordinator is down: the push succeeds, its changes are spooled, then flushed once.
    await coord.stop()
    [late] = clone.commit(1, "b")
    said = push(clone, server.path)
    assert "1 change(s) spooled" in said
    await coord.start()
    code, flushed, err = await run_cli("hook", "flush", "--repo", str(server.path), "--coordinator", coord.address)
    assert code == 0, err.decode()
    assert "1 spooled change(s) sent" in flushed.decode()
    assert [c.revision for c in await changes(coord)] == [*nodes, late]
