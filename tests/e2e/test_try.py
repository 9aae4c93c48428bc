"""Try jobs end to end: real git repositories, the real `git diff --binary` of a developer's
checkout sent by `gantry try`, a real coordinator and worker applying it with `git apply`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import FAILURE, SKIPPED, SUCCESS, Cluster, Coordinator, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org", "GIT_COMMITTER_NAME": "Dev",
       "GIT_COMMITTER_EMAIL": "dev@example.org"}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **ENV}, timeout=60,
    )
    return out.stdout.strip()


def git_bytes(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60).stdout


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """A bare origin with one commit on main, and a developer's clone tracking origin/main."""
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q")
    (seed / "hello.txt").write_text("hello\n")
    (seed / "data.bin").write_bytes(bytes(range(256)) * 4)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "initial")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    git(dev, "config", "user.name", "Dev")
    git(dev, "config", "user.email", "dev@example.org")
    return origin, dev


CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[
        Builder("t", workers=["w1"], steps=[
            Git(repourl={origin!r}, branch="main"),
            ShellCommand(name="show",
                         command="cat hello.txt; sha256sum data.bin new.bin; rc=$?; git status --short; exit $rc"),
        ]),
        Builder("other", workers=["w1"], steps=[ShellCommand("true")]),
    ],
    schedulers=[TryScheduler("try", builderNames=["t"], max_patch_size=64 * 1024)],
)
"""


async def start(cluster: Cluster, origin: Path) -> Coordinator:
    coord = await cluster.start_coordinator(CONFIG.format(origin=str(origin)))
    await cluster.start_worker(coord, "w1", "s1")
    return coord


def props(build: object) -> dict[str, object]:
    return {p.name: json.loads(p.value_json) for p in build.properties}  # type: ignore[attr-defined]


async def test_a_try_job_builds_unpushed_commits_and_uncommitted_text_and_binary_changes(
    cluster: Cluster, repos: tuple[Path, Path]
) -> None:
    origin, dev = repos
    coord = await start(cluster, origin)
    base = git(dev, "rev-parse", "HEAD")
    new_bin = os.urandom(3000)
    (dev / "new.bin").write_bytes(new_bin)
    git(dev, "add", "new.bin")
    git(dev, "commit", "-q", "-m", "add new.bin")  # a local commit, not pushed
    (dev / "hello.txt").write_text("hello, try\n")  # uncommitted text change
    data = bytes(reversed(range(256))) * 4
    (dev / "data.bin").write_bytes(data)  # uncommitted binary change
    expected_patch = git_bytes(dev, "diff", "--binary", base)

    code, out, err = await run_cli("try", "-b", "t", "--wait", "-C", str(dev), "--coordinator", coord.address)
    text = out.decode()
    assert code == 0, text + err.decode()
    assert "try job sent: buildset" in text and f"main at {base[:12]}" in text and "for t" in text
    build = await coord.get_build("t", 1)
    assert build.result == SUCCESS
    assert build.sourcestamps[0].revision == base and build.sourcestamps[0].branch == "main"
    assert props(build)["owner"] == "Dev <dev@example.org>" == props(build)["patch_author"]
    assert props(build)["patch_comment"] == "add new.bin"
    assert props(build)["got_revision"] == base
    log = (await coord.read_log("t", 1, "show")).decode()
    assert "hello, try" in log
    assert f"{hashlib.sha256(data).hexdigest()}  data.bin" in log
    assert f"{hashlib.sha256(new_bin).hexdigest()}  new.bin" in log
    # The patch is kept with the build, byte for byte.
    saved = cluster.tmp / "try.patch"
    code, _, err = await run_cli("download", "t", "1", "try.patch", "-o", str(saved), "--coordinator", coord.address)
    assert code == 0, err.decode()
    assert saved.read_bytes() == expected_patch
    code, out, _ = await run_cli("build", "t", "1", "--coordinator", coord.address)
    assert "try.patch" in out.decode() and "patch_author" in out.decode()

    # The next build (not a try) starts clean: the patch's files are gone.
    code, out, err = await run_cli("try", "-b", "t", "--wait", "-C", str(dev), "--coordinator", coord.address,
                                   "--diff", "-", "--revision", base, "--branch", "main",
                                   stdin=b"diff --git a/x.txt b/x.txt\nnew file mode 100644\n--- /dev/null\n"
                                         b"+++ b/x.txt\n@@ -0,0 +1 @@\n+x\n")
    assert code == 1, out.decode() + err.decode()  # `show` fails: new.bin is not there any more
    log = (await coord.read_log("t", 2, "show")).decode()
    assert "hello\n" in log and "new.bin: No such file" in log and "A  x.txt" in log


async def test_a_patch_that_does_not_apply_fails_the_first_step_with_gits_message(
    cluster: Cluster, repos: tuple[Path, Path], tmp_path: Path
) -> None:
    origin, dev = repos
    coord = await start(cluster, origin)
    base = git(dev, "rev-parse", "HEAD")
    (dev / "hello.txt").write_text("something else\n")
    git(dev, "commit", "-q", "-am", "elsewhere")
    (dev / "hello.txt").write_text("and again\n")
    stale = tmp_path / "stale.patch"
    stale.write_bytes(git_bytes(dev, "diff"))
    code, out, err = await run_cli("try", "-b", "t", "--wait", "--diff", str(stale), "--revision", base,
                                   "--branch", "main", "-C", str(dev), "--coordinator", coord.address)
    assert code == 1, out.decode() + err.decode()
    build = await coord.get_build("t", 1)
    assert build.result == FAILURE
    assert [(s.name, s.result) for s in build.steps] == [("git", FAILURE), ("show", SKIPPED)]
    log = (await coord.read_log("t", 1, "git")).decode()
    assert f"the patch does not apply to {base}" in log
    assert "error: patch failed: hello.txt:1" in log  # git's own words


async def test_what_the_coordinator_refuses(cluster: Cluster, repos: tuple[Path, Path]) -> None:
    origin, dev = repos
    coord = await start(cluster, origin)
    (dev / "big.bin").write_bytes(os.urandom(100 * 1024))
    git(dev, "add", "big.bin")
    code, out, err = await run_cli("try", "-b", "t", "-C", str(dev), "--coordinator", coord.address)
    assert code == 1 and out == b""
    message = err.decode()
    assert "the patch is" in message and "TryScheduler 'try' accepts at most 64.0 KiB" in message, message
    git(dev, "reset", "-q", "--hard")
    git(dev, "clean", "-qfdx")
    code, _, err = await run_cli("try", "-b", "t", "-C", str(dev), "--coordinator", coord.address)
    assert code == 1 and "nothing to try" in err.decode()
    (dev / "hello.txt").write_text("changed\n")
    code, _, err = await run_cli("try", "-b", "other", "-C", str(dev), "--coordinator", coord.address)
    assert code == 1 and "builder 'other' does not take try jobs (builders that do: t)" in err.decode()
    assert await coord.list_builds() == []
