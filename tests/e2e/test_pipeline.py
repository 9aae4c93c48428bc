"""Pipelines in the repository end to end: each revision of a real git repository carries its
own .gantry/pipeline.yml; a real coordinator and worker build each with its own steps."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import FAILURE, SKIPPED, SUCCESS, Cluster, Coordinator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org", "GIT_COMMITTER_NAME": "Dev",
       "GIT_COMMITTER_EMAIL": "dev@example.org"}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                         capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60)
    return out.stdout.strip()


def commit(repo: Path, pipeline: str, message: str) -> str:
    (repo / ".gantry").mkdir(exist_ok=True)
    (repo / ".gantry" / "pipeline.yml").write_text(pipeline)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


FIRST = """\
env:
  GREETING: hello
steps:
  - name: greet
    run: echo "$GREETING from the first revision"
  - name: release only
    run: echo never here
    branches: [release/*]
"""

SECOND = """\
steps:
  - name: build
    run: mkdir -p dist && echo wheel > dist/pkg.whl && echo "token is $TOKEN"
    env:
      TOKEN: {secret: deploy_token}
    artifacts: [dist/*.whl]
  - name: test
    run: [sh, -c, "exit 3"]
  - name: cleanup
    run: echo cleaning
    alwaysRun: true
"""

BROKEN = """\
steps:
  - name: ok
    run: exit 0
  - name: bad
    run: echo hi
    timeout: soon
"""

FORBIDDEN = """\
steps:
  - name: leak
    run: echo "$X"
    env:
      X: {secret: root_password}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    return path


async def start(cluster: Cluster, repo: Path, tmp_path: Path) -> Coordinator:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "deploy_token").write_text("s3cr3t-value\n")
    (secrets / "root_password").write_text("hunter2\n")
    coord = await cluster.start_coordinator(f"""
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    secretsProviders=[SecretInAFile({str(secrets)!r})],
    builders=[Builder("ci", workers=["w1"], steps=[
        Git(repourl={str(repo)!r}, branch="main"),
        Pipeline(secrets=["deploy_token"]),
    ])],
    schedulers=[ForceScheduler("force", builders=["ci"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1")
    return coord


async def build(coord: Coordinator, revision: str, number: int) -> object:
    await coord.force("ci", revision=revision, branch="main")

    async def done() -> object:
        b = [x for x in await coord.list_builds("ci") if x.number == number and x.complete]
        return b[0] if b else None

    from tests.e2e.harness import poll

    await poll(done, what=f"ci #{number} finishes")
    return await coord.get_build("ci", number)


def steps(b: object) -> list[tuple[str, int]]:
    return [(s.name, s.result) for s in b.steps]  # type: ignore[attr-defined]


async def test_each_revision_builds_with_its_own_pipeline(cluster: Cluster, repo: Path, tmp_path: Path) -> None:
    first = commit(repo, FIRST, "first")
    second = commit(repo, SECOND, "second")
    coord = await start(cluster, repo, tmp_path)

    one = await build(coord, first, 1)
    assert steps(one) == [("git", SUCCESS), ("pipeline", SUCCESS), ("greet", SUCCESS),
                          ("release only", SKIPPED)]
    assert one.result == SUCCESS  # type: ignore[attr-defined]
    assert b"hello from the first revision" in await coord.read_log("ci", 1, "greet")

    two = await build(coord, second, 2)
    assert steps(two) == [("git", SUCCESS), ("pipeline", SUCCESS), ("build", SUCCESS),
                          ("build artifacts", SUCCESS), ("test", FAILURE), ("cleanup", SUCCESS)]
    log = await coord.read_log("ci", 2, "build")
    assert b"token is <secret deploy_token>" in log and b"s3cr3t" not in log  # allowed, and redacted
    assert [a.name for a in two.artifacts] == ["pkg.whl"]  # type: ignore[attr-defined]

    # The first revision again: its own definition, not the newest.
    three = await build(coord, first, 3)
    assert [n for n, _ in steps(three)] == ["git", "pipeline", "greet", "release only"]


async def test_a_broken_or_forbidden_file_fails_the_pipeline_step_naming_file_and_line(
    cluster: Cluster, repo: Path, tmp_path: Path
) -> None:
    broken = commit(repo, BROKEN, "broken")
    forbidden = commit(repo, FORBIDDEN, "forbidden")
    coord = await start(cluster, repo, tmp_path)

    one = await build(coord, broken, 1)
    assert steps(one) == [("git", SUCCESS), ("pipeline", FAILURE)]
    log = await coord.read_log("ci", 1, "pipeline")
    assert b".gantry/pipeline.yml:6: timeout must be a number of seconds > 0, not 'soon'" in log

    two = await build(coord, forbidden, 2)
    assert steps(two) == [("git", SUCCESS), ("pipeline", FAILURE)]
    log = await coord.read_log("ci", 2, "pipeline")
    assert (b".gantry/pipeline.yml:5: secret 'root_password' is not allowed for builder 'ci' "
            b"(its Pipeline(secrets=[...]) allows: deploy_token)") in log
    assert b"hunter2" not in log
