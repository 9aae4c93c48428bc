"""Webhooks end to end: a real coordinator serving HTTP on loopback (`--http 127.0.0.1:0`),
deliveries shaped like GitHub's, GitLab's and Gitea's documented examples, the stored changes
read back through the gRPC API and built by the configured schedulers; refused deliveries and
redeliveries store nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protos.gantry.v1 import common_pb2, control_pb2
from tests.e2e.harness import (
    ROOT,
    START_TIMEOUT,
    SUCCESS,
    TIMEOUT,
    Cluster,
    Coordinator,
    child_env,
    config_source,
    poll,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FIXTURES = Path(__file__).resolve().parents[1] / "coordinator" / "webhooks"
SECRETS = {"github": "gh-s3cret", "gitlab": "gl-t0ken", "gitea": "gt-s3cret"}
HTTP_LINE = r"Gantry coordinator HTTP on http://(\S+):(\d+)/"

CONFIG = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("b", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "hi"])],
                collapseRequests=False),  # one build per pushed commit
        Builder("prs", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "pr"])]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=None, builders=["b"]),
        AnyBranchScheduler("pulls", builders=["prs"], tree_stable_timer=None,
                           change_filter=ChangeFilter(category="pull")),
    ],
    www=dict(change_hook_dialects={{
        "github": {{"secret": {SECRETS["github"]!r}, "strict": True}},
        "gitlab": {{"secret": {SECRETS["gitlab"]!r}}},
        "gitea": {{"secret": {SECRETS["gitea"]!r}}},
    }}),
)
"""


def payload(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())).encode()


def signed(dialect: str, event: str, body: bytes, delivery: str = "") -> dict[str, str]:
    """The headers the service would send with `body`."""
    delivery = delivery or str(uuid.uuid4())
    digest = hmac.new(SECRETS[dialect].encode(), body, hashlib.sha256).hexdigest()
    if dialect == "github":
        return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "Content-Type": "application/json",
                "X-Hub-Signature-256": f"sha256={digest}", "User-Agent": "GitHub-Hookshot/044aadd"}
    if dialect == "gitlab":
        return {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery, "Content-Type": "application/json",
                "X-Gitlab-Token": SECRETS["gitlab"], "User-Agent": "GitLab/17.0.0"}
    return {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery, "Content-Type": "application/json",
            "X-Gitea-Signature": digest}


class Http:
    def __init__(self, coord: Coordinator, session: aiohttp.ClientSession, base: str) -> None:
        self.coord = coord
        self.session = session
        self.base = base

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.session.post(self.base + path, data=body, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


async def start(cluster: Cluster, db: str | None = None) -> tuple[Coordinator, str]:
    coord = await cluster.start_coordinator(CONFIG, db=db, extra_args=["--http", "127.0.0.1:0"])
    assert coord.process is not None
    m = await coord.process.wait_line(HTTP_LINE)
    assert m.group(1) == "127.0.0.1" and int(m.group(2)) > 0
    return coord, f"http://127.0.0.1:{m.group(2)}"


async def changes(coord: Coordinator) -> list[common_pb2.Change]:
    resp = await coord.control.ListChanges(control_pb2.ListChangesRequest(limit=1000), timeout=TIMEOUT)
    return sorted(resp.changes, key=lambda c: c.id)


async def finished_builds(coord: Coordinator, builder: str, count: int) -> list[control_pb2.Build]:
    async def check() -> list[control_pb2.Build]:
        builds = [b for b in await coord.list_builds(builder) if b.complete]
        if len(builds) < count:
            return []
        return [await coord.get_build(builder, b.number) for b in builds]  # with changes

    return await poll(check, what=f"{count} finished build(s) of {builder}")


async def test_github_push_and_pull_request_are_stored_and_built(cluster: Cluster, db: str | None) -> None:
    coord, base = await start(cluster, db)
    await cluster.start_worker(coord, "w1", "secret1")
    async with aiohttp.ClientSession() as session:
        http = Http(coord, session, base)
        body = payload("github_push")
        status, doc = await http.post("/change_hook/github", body, signed("github", "push", body))
        assert status == 200, doc
        assert len(doc["change_ids"]) == 2 and doc["duplicate"] is False
        body = payload("github_pull_request")
        status, doc = await http.post("/change_hook/github", body, signed("github", "pull_request", body))
        assert status == 200, doc
        [pr_id] = doc["change_ids"]

    stored = await changes(coord)
    assert [c.revision for c in stored] == [
        "a10867b14bb761a232cd80139fbd4c0d33264240", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821"]
    push = stored[1]
    assert push.author == "Mona Lisa <mona@github.com>"
    assert (push.branch, push.category, push.project) == ("main", "push", "Codertocat/Hello-World")
    assert push.repository == "https://github.com/Codertocat/Hello-World"
    assert list(push.files) == ["src/hello.c", "old.sh"]
    assert push.revlink.endswith("/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
    assert push.when.seconds == 1557948030  # the commit's timestamp, not the delivery's
    pr = stored[2]
    assert (pr.id, pr.branch, pr.category) == (pr_id, "refs/pull/2/merge", "pull")
    props = {p.name: json.loads(p.value_json) for p in pr.properties}
    assert props["github.number"] == 2 and props["github.head.repo.full_name"] == "Codertocat/Hello-World"

    # SingleBranchScheduler("main", tree_stable_timer=None) builds each pushed commit.
    builds = await finished_builds(coord, "b", 2)
    assert {b.result for b in builds} == {SUCCESS}
    assert sorted(c.revision for b in builds for c in b.changes) == sorted(c.revision for c in stored[:2])
    [pr_build] = await finished_builds(coord, "prs", 1)
    assert [c.revision for c in pr_build.changes] == [pr.revision]
    build_props = {p.name: json.loads(p.value_json) for p in pr_build.properties}
    assert build_props["branch"] == "refs/pull/2/merge" and build_props["github.number"] == 2


async def test_gitlab_and_gitea_deliveries(cluster: Cluster) -> None:
    coord, base = await start(cluster)
    async with aiohttp.ClientSession() as session:
        http = Http(coord, session, base)
        sent = [
            ("gitlab", "Push Hook", "gitlab_push", 2),
            ("gitlab", "Tag Push Hook", "gitlab_tag_push", 1),
            ("gitlab", "Merge Request Hook", "gitlab_merge_request", 1),
            ("gitea", "push", "gitea_push", 2),
            ("gitea", "pull_request", "gitea_pull_request", 1),
        ]
        for dialect, event, name, count in sent:
            body = payload(name)
            status, doc = await http.post(f"/change_hook/{dialect}", body, signed(dialect, event, body))
            assert status == 200 and len(doc["change_ids"]) == count, (name, status, doc)
    stored = await changes(coord)
    assert [(c.category, c.branch, c.project) for c in stored] == [
        ("push", "master", "mike/diaspora"),
        ("push", "master", "mike/diaspora"),
        ("tag", "v1.0.0", "jsmith/example"),
        ("pull", "master", "awesome_space/awesome_project"),
        ("push", "develop", "gitea/webhooks"),
        ("push", "develop", "gitea/webhooks"),
        ("pull", "docs", "gitea/webhooks"),
    ]
    assert stored[0].author == "Jordi Mallach <jordi@softcatala.org>"
    assert stored[5].revision == "bffeb74224043ba2feb48d137756c8a9331c449a"  # Gitea's newest, last
    assert list(stored[5].files) == ["hooks.md", "README.md"]


async def test_refused_deliveries_store_nothing(cluster: Cluster) -> None:
    coord, base = await start(cluster)
    body = payload("github_push")
    async with aiohttp.ClientSession() as session:
        http = Http(coord, session, base)
        headers = signed("github", "push", body)
        status, doc = await http.post("/change_hook/github", body.replace(b"Mona", b"Eve!"), headers)
        assert status == 403 and "does not match" in doc["error"]
        del headers["X-Hub-Signature-256"]
        status, doc = await http.post("/change_hook/github", body, headers)
        assert status == 401 and "X-Hub-Signature-256" in doc["error"]
        bad = b'{"ref": "refs/heads/main", "commits": ['
        status, doc = await http.post("/change_hook/github", bad, signed("github", "push", bad))
        assert status == 400 and "not valid JSON" in doc["error"]
        partial = json.dumps({"ref": "refs/heads/main", "commits": []}).encode()
        status, doc = await http.post("/change_hook/github", partial, signed("github", "push", partial))
        assert status == 400 and "repository" in doc["error"]
        long_branch = json.loads(body)
        long_branch["ref"] = "refs/heads/" + "x" * 300  # longer than a change's branch may be
        lb = json.dumps(long_branch).encode()
        status, doc = await http.post("/change_hook/github", lb, signed("github", "push", lb))
        assert status == 400 and "branch is 300 characters long" in doc["error"]
        gl = payload("gitlab_push")
        status, doc = await http.post("/change_hook/gitlab", gl, {**signed("gitlab", "Push Hook", gl),
                                                                  "X-Gitlab-Token": "wrong"})
        assert status == 403
        status, doc = await http.post("/change_hook/bitbucket", body, headers)
        assert status == 404 and "bitbucket" in doc["error"]
        async with session.get(base + "/change_hook/github") as resp:
            assert resp.status == 405
        ping = payload("github_ping")
        status, doc = await http.post("/change_hook/github", ping, signed("github", "ping", ping))
        assert (status, doc["change_ids"]) == (200, [])
        closed = json.loads(payload("github_pull_request"))
        closed["action"] = "closed"
        closed_body = json.dumps(closed).encode()
        status, doc = await http.post("/change_hook/github", closed_body,
                                      signed("github", "pull_request", closed_body))
        assert (status, doc["change_ids"]) == (200, []) and "closed" in doc["ignored"]
        deleted = payload("github_push_delete")
        status, doc = await http.post("/change_hook/github", deleted, signed("github", "push", deleted))
        assert (status, doc["change_ids"]) == (200, [])
    assert await changes(coord) == []
    assert coord.process is not None and coord.process.returncode is None


async def test_a_redelivery_stores_nothing_new(cluster: Cluster) -> None:
    coord, base = await start(cluster)
    body = payload("gitea_push")
    async with aiohttp.ClientSession() as session:
        http = Http(coord, session, base)
        headers = signed("gitea", "push", body, delivery="f6266f16-1bf3-46a5-9ea4-602e06ead473")
        status, first = await http.post("/change_hook/gitea", body, headers)
        assert status == 200 and first["duplicate"] is False and len(first["change_ids"]) == 2
        status, again = await http.post("/change_hook/gitea", body, headers)
        assert status == 200 and again == {"change_ids": first["change_ids"], "duplicate": True}
        assert len(await changes(coord)) == 2
        # The key is per dialect and delivery: another delivery of the same push is stored.
        status, other = await http.post("/change_hook/gitea", body, signed("gitea", "push", body))
        assert status == 200 and other["duplicate"] is False
    # Also across a restart: the key is stored with the changes.
    await coord.restart()
    m = await coord.process.wait_line(HTTP_LINE)  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        status, doc = await Http(coord, session, f"http://127.0.0.1:{m.group(2)}").post(
            "/change_hook/gitea", body, headers)
        assert status == 200 and doc == {"change_ids": first["change_ids"], "duplicate": True}
    assert len(await changes(coord)) == 4


async def run_coordinator(tmp_path: Path, *args: str) -> tuple[int, str]:
    """`coordinator start ARGS` expected to exit by itself: (exit code, stderr)."""
    config = tmp_path / "master.py"
    config.write_text(config_source(CONFIG))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coordinator", "start", "--config", str(config),
        "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0", *args,
        cwd=ROOT, env=child_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the coordinator did not exit") from None
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_bad_or_busy_http_address_is_reported_without_traceback(tmp_path: Path) -> None:
    code, err = await run_coordinator(tmp_path, "--http", "localhost")
    assert code == 1 and "--http needs HOST:PORT" in err and "Traceback" not in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = await run_coordinator(tmp_path, "--http", f"127.0.0.1:{port}")
    assert code == 1 and f"cannot listen for HTTP on 127.0.0.1:{port}" in err and "Traceback" not in err
