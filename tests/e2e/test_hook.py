"""`gantry hook install` in real git repositories, pushing to a real coordinator."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import TIMEOUT, Cluster, Coordinator, child_env, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "hi"])])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=1, builders=["b"])],
)
"""


def git(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """git as a user runs it (hooks run with the test checkout on PYTHONPATH, like the CLI)."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          env=child_env(), timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


async def agit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(git, cwd, *args)


def make_repos(tmp: Path) -> tuple[Path, Path]:
    """A bare 'server' repository and a clone of it to push from."""
    bare = tmp / "server.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    clone = tmp / "clone"
    git(tmp, "clone", "-q", str(bare), str(clone))
    git(clone, "config", "user.name", "Jane Doe")
    git(clone, "config", "user.email", "jane@example.org")
    git(clone, "checkout", "-q", "-b", "main")
    return bare, clone


def commit(repo: Path, n: int, prefix: str = "c") -> list[str]:
    """n commits, each adding one file; returns their revisions, oldest first."""
    revs = []
    for i in range(n):
        name = f"{prefix}{i}.txt"
        (repo / name).write_text(f"{prefix} {i}\n")
        git(repo, "add", name)
        git(repo, "commit", "-q", "-m", f"{prefix} commit {i}\n\nbody {i}")
        revs.append(git(repo, "rev-parse", "HEAD").stdout.strip())
    return revs


async def install(coord: Coordinator, repo: Path, *extra: str) -> None:
    code, out, err = await run_cli("hook", "install", "--repo", str(repo), "--coordinator", coord.address, *extra)
    assert code == 0, err.decode()
    assert b"installed" in out


async def changes(coord: Coordinator) -> list:
    resp = await coord.control.ListChanges(control_pb2.ListChangesRequest(limit=1000), timeout=TIMEOUT)
    return list(reversed(resp.changes))  # oldest first


async def test_a_push_of_50_commits_is_one_batch_of_50_changes_and_builds(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    bare, clone = make_repos(tmp_path)
    await install(coord, bare, "--project", "proj", "--category", "ci",
                  "--revlink", "https://git.example.org/commit/{revision}")

    revs = commit(clone, 50)
    push = await agit(clone, "push", "-q", "origin", "main")
    assert "gantry: 50 change(s) sent" in push.stderr
    assert "Traceback" not in push.stderr

    got = await changes(coord)
    assert [c.revision for c in got] == revs
    first = got[0]
    assert first.author == "Jane Doe <jane@example.org>" and first.committer == "Jane Doe <jane@example.org>"
    assert first.comments == "c commit 0\n\nbody 0"
    assert list(first.files) == ["c0.txt"]
    assert (first.branch, first.repository, first.project, first.category) == ("main", str(bare), "proj", "ci")
    assert first.revlink == f"https://git.example.org/commit/{revs[0]}"
    commit_time = int(git(clone, "show", "-s", "--format=%ct", revs[0]).stdout)
    assert first.when.seconds == commit_time

    # One SubmitChanges request: one idempotency key holds all 50 ids.
    db = sqlite3.connect(coord.data_dir / "gantry.sqlite")
    rows = db.execute("SELECT key, change_ids_json FROM idempotency_keys").fetchall()
    db.close()
    assert len(rows) == 1 and rows[0][0].startswith("hook-") and len(rows[0][1].split(",")) == 50

    # The same push delivered again (a retried hook) stores nothing new.
    stdin = f"{'0' * 40} {revs[-1]} refs/heads/main\n"
    proc = await asyncio.to_thread(
        subprocess.run, [str(bare / "hooks" / "post-receive")], cwd=bare, input=stdin, text=True,
        capture_output=True, env=child_env({"GIT_DIR": str(bare)}), timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(await changes(coord)) == 50

    async def built() -> list:
        return [b for b in await coord.list_builds("b") if b.complete]

    [build] = await poll(built, what="a build of the pushed changes")
    full = await coord.get_build("b", build.number)
    assert full.result == 0 and len(full.changes) == 50
    assert full.sourcestamps[0].revision == revs[-1]


async def test_new_branch_deleted_branch_and_tags(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    bare, clone = make_repos(tmp_path)
    await install(coord, bare)
    main_revs = commit(clone, 3)
    await agit(clone, "push", "-q", "origin", "main")
    assert len(await changes(coord)) == 3

    # A new branch: only the commits no other branch has.
    git(clone, "checkout", "-q", "-b", "feature")
    feature_revs = commit(clone, 2, prefix="f")
    push = await agit(clone, "push", "-q", "origin", "feature")
    assert "2 change(s) sent" in push.stderr
    got = await changes(coord)
    assert [(c.revision, c.branch) for c in got[3:]] == [(r, "feature") for r in feature_revs]

    # A new branch with no new commits, then deleting a branch: no change.
    await agit(clone, "push", "-q", "origin", f"{main_revs[1]}:refs/heads/old")
    await agit(clone, "push", "-q", "origin", "--delete", "feature")
    assert len(await changes(coord)) == 5

    # A new tag: one change for the tagged commit, its branch the tag's name (git_buildbot.py).
    git(clone, "tag", "-a", "v1.0", "-m", "release", main_revs[2])
    await agit(clone, "push", "-q", "origin", "v1.0")
    got = await changes(coord)
    assert len(got) == 6 and (got[5].revision, got[5].branch) == (main_revs[2], "v1.0")
    # Moving or deleting a tag: nothing.
    await agit(clone, "push", "-q", "origin", "--delete", "v1.0")
    assert len(await changes(coord)) == 6


async def test_unreachable_coordinator_spools_and_flush_sends_once(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    bare, clone = make_repos(tmp_path)
    await install(coord, bare)
    await coord.stop()

    revs = commit(clone, 3)
    push = await agit(clone, "push", "-q", "origin", "main")  # succeeds: check=True in git()
    assert f"cannot reach the coordinator at {coord.address}: 3 change(s) spooled" in push.stderr
    assert "gantry hook flush --repo" in push.stderr and "Traceback" not in push.stderr
    [spooled] = list((bare / "gantry-spool").glob("*.json"))
    kept = tmp_path / "copy.json"
    shutil.copy(spooled, kept)

    await coord.start()
    code, out, err = await run_cli("hook", "flush", "--repo", str(bare))
    assert code == 0, err.decode()
    assert b"3 spooled change(s) sent" in out
    assert [c.revision for c in await changes(coord)] == revs
    code, out, _ = await run_cli("hook", "flush", "--repo", str(bare))
    assert code == 0 and b"nothing spooled" in out

    # A spool file sent again (say the flush died before deleting it) stores nothing new.
    shutil.copy(kept, spooled)
    code, out, _ = await run_cli("hook", "flush", "--repo", str(bare))
    assert code == 0 and b"3 spooled change(s) sent" in out
    assert len(await changes(coord)) == 3

    # Spooled while down, then the next successful push sends the spool first.
    await coord.stop()
    later = commit(clone, 2, prefix="d")
    push = await agit(clone, "push", "-q", "origin", "main")
    assert "2 change(s) spooled" in push.stderr
    await coord.start()
    last = commit(clone, 1, prefix="e")
    push = await agit(clone, "push", "-q", "origin", "main")
    assert "1 change(s) sent" in push.stderr and "2 spooled earlier" in push.stderr
    assert [c.revision for c in await changes(coord)] == revs + later + last
    assert not list((bare / "gantry-spool").glob("*.json"))


async def test_post_commit_hook_in_a_working_repository(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "config", "user.name", "Jane Doe")
    git(repo, "config", "user.email", "jane@example.org")
    await install(coord, repo, "--repository", "https://git.example.org/work.git")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    done = await asyncio.to_thread(git, repo, "commit", "-q", "-m", "local work")
    assert "1 change(s) sent" in done.stderr
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    [change] = await changes(coord)
    assert (change.revision, change.branch, change.repository) == (head, "main", "https://git.example.org/work.git")
    assert list(change.files) == ["a.txt"] and change.comments == "local work"


async def test_a_required_token_missing_or_wrong_is_reported_and_spooled(cluster: Cluster, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("guess\n")
    coord = await cluster.start_coordinator(CONFIG, extra_args=["--change-token-file", str(token)])
    bare, clone = make_repos(tmp_path)

    await install(coord, bare)
    commit(clone, 1)
    push = await agit(clone, "push", "-q", "origin", "main")
    assert "requires a token to submit changes" in push.stderr and "1 change(s) spooled" in push.stderr

    await install(coord, bare, "--token-file", str(wrong))
    commit(clone, 1, prefix="x")
    push = await agit(clone, "push", "-q", "origin", "main")
    assert "token sent to submit changes is not valid" in push.stderr and "2 waiting" in push.stderr
    assert await changes(coord) == []

    code, _, err = await run_cli("sendchange", "--coordinator", coord.address, "--author", "a",
                                 "--repository", "r", "--branch", "main", "--revision", "1")
    assert code == 1 and b"requires a token" in err and b"Traceback" not in err

    await install(coord, bare, "--token-file", str(token))
    code, out, err = await run_cli("hook", "flush", "--repo", str(bare))
    assert code == 0, err.decode()
    assert b"2 spooled change(s) sent" in out
    assert len(await changes(coord)) == 2
