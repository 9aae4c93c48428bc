"""Bitbucket webhooks end to end: a real coordinator serving HTTP on loopback and a worker;
Bitbucket Cloud and Bitbucket Server deliveries (tests/coordinator/webhooks/bitbucket*.json)
are stored and built; refused deliveries store nothing; a redelivery is recognised."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import SUCCESS, Cluster
from tests.e2e.test_webhooks import HTTP_LINE, Http, changes, finished_builds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FIXTURES = Path(__file__).resolve().parents[1] / "coordinator" / "webhooks"
SECRET = "bb-s3cret"

CONFIG = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[
        Builder("b", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "hi"])]),
        Builder("prs", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "pr"])]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=None, builders=["b"]),
        AnyBranchScheduler("pulls", builders=["prs"], tree_stable_timer=None,
                           change_filter=ChangeFilter(category="pull")),
    ],
    www=dict(change_hook_dialects={{
        "bitbucketcloud": {{"secret": {SECRET!r}}},
        "bitbucketserver": {{"secret": {SECRET!r}}},
    }}),
)
"""


def payload(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / f"{name}.json").read_text())).encode()


def signed(event: str, body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Event-Key": event, "X-Request-UUID": delivery, "X-Request-Id": delivery,
            "X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"}


async def test_bitbucket_cloud_and_server_deliveries_are_built(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG, extra_args=["--http", "127.0.0.1:0"])
    assert coord.process is not None
    m = await coord.process.wait_line(HTTP_LINE)
    await cluster.start_worker(coord, "w1", "secret1")
    push, pr = payload("bitbucketcloud_push"), payload("bitbucketserver_pr_opened")
    async with aiohttp.ClientSession() as session:
        http = Http(coord, session, f"http://127.0.0.1:{m.group(2)}")
        # refusals first: nothing is stored
        headers = signed("repo:push", push, "c-1")
        forged = push.replace(b"Emma", b"Eve!")
        status, doc = await http.post("/change_hook/bitbucketcloud", forged, headers)
        assert status == 403 and "does not match" in doc["error"]
        status, doc = await http.post("/change_hook/bitbucketcloud", push,
                                      {k: v for k, v in headers.items() if k != "X-Hub-Signature"})
        assert status == 401 and "X-Hub-Signature" in doc["error"]
        status, doc = await http.post("/change_hook/bitbucketserver", pr,
                                      {**signed("pr:opened", pr, "s-1"), "X-Event-Key": ""})
        assert status == 400 and "X-Event-Key" in doc["error"]
        async with session.get(http.base + "/change_hook/bitbucketcloud") as resp:
            assert resp.status == 405
        assert await changes(coord) == []

        status, first = await http.post("/change_hook/bitbucketcloud", push, headers)
        assert status == 200 and len(first["change_ids"]) == 2 and first["duplicate"] is False
        status, again = await http.post("/change_hook/bitbucketcloud", push, headers)
        assert (status, again) == (200, {"change_ids": first["change_ids"], "duplicate": True})
        status, doc = await http.post("/change_hook/bitbucketserver", pr, signed("pr:opened", pr, "s-1"))
        assert status == 200 and len(doc["change_ids"]) == 1

    stored = await changes(coord)
    assert [(c.branch, c.category) for c in stored] == [("main", "push"), ("v1.0", "tag"), ("feature", "pull")]
    (main,) = await finished_builds(coord, "b", 1)
    assert main.result == SUCCESS and [c.revision for c in main.changes] == [
        "709d658dc5b6d6afcd46049c2f332ee3f515a67d"]
    (pull,) = await finished_builds(coord, "prs", 1)
    assert pull.result == SUCCESS
    assert pull.changes[0].repository == "https://bitbucket.example.org/scm/prj/hello.git"
