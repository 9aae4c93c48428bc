"""SubmitChanges and WatchBuild over HTTP: a change POSTed with the change token is stored (and
built) as over gRPC, with the same validation messages; a build watched as Server-Sent Events
gives its full state, then an update per event, then `end`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from protos.gantry.v1 import changes_pb2, common_pb2
from tests.e2e.harness import Cluster
from tests.e2e.test_http_api import call
from tests.e2e.web import WEB_CONFIG, Web, sse_events, started

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
TOKEN = "s3cret-token"
ON_MAIN = WEB_CONFIG.replace(
    "schedulers=[", 'schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["ok"]),')
CHANGE = {"author": "Jane <jane@example.org>", "revision": "abc123", "branch": "main", "repository": "r",
          "files": ["a.c"], "comments": "fix", "properties": [{"name": "reviewed", "value": True}]}


async def watch(s: aiohttp.ClientSession, web: Web, builder: str, number: int) -> list[tuple[str, str, Any]]:
    """Every (id, event name, data) of a build's watch stream, up to its `end`."""
    got = []
    async for item in sse_events(s, f"{web.base}/api/v1/builders/{builder}/builds/{number}/watch"):
        got.append(item)
        if item[1] == "end":
            break
    return got


async def test_changes_posted_with_the_change_token_are_stored_and_built(cluster: Cluster, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with started(cluster, ON_MAIN, extra_args=["--change-token-file", str(token_file)]) as web, \
            aiohttp.ClientSession() as s:
        body = {"changes": [CHANGE], "idempotency_key": "push-1"}
        status, doc = await call(s, web, "POST", "/api/v1/changes", body)
        assert status == 401 and doc["code"] == "UNAUTHENTICATED" and "requires a token" in doc["error"]
        status, doc = await call(s, web, "POST", "/api/v1/changes", body, headers={"Authorization": "Bearer guess"})
        assert status == 401 and "not valid" in doc["error"]
        # Reads need no token here (no `auth` configured): only submitting changes does, as over gRPC.
        assert (await call(s, web, "GET", "/api/v1/changes"))[1] == {"changes": []}

        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, first = await call(s, web, "POST", "/api/v1/changes", body, headers=auth)
        assert status == 200 and first["duplicate"] is False and len(first["change_ids"]) == 1
        status, again = await call(s, web, "POST", "/api/v1/changes", body, headers=auth)
        assert (status, again) == (200, {"change_ids": first["change_ids"], "duplicate": True})
        status, stored = await call(s, web, "GET", f"/api/v1/changes/{first['change_ids'][0]}")
        assert status == 200 and (stored["revision"], stored["files"]) == ("abc123", ["a.c"])
        assert stored["properties"][0]["value"] is True

        # A bad change: the gRPC API's message, word for word.
        bad = {"changes": [{**CHANGE, "author": ""}]}
        status, doc = await call(s, web, "POST", "/api/v1/changes", bad, headers=auth)
        assert status == 400 and doc["code"] == "INVALID_ARGUMENT"
        with pytest.raises(grpc.aio.AioRpcError) as grpc_error:
            await web.coord.changes.SubmitChanges(changes_pb2.SubmitChangesRequest(changes=[common_pb2.Change(
                author="", revision="abc123", branch="main", repository="r", files=["a.c"], comments="fix",
                properties=[common_pb2.Property(name="reviewed", value_json="true")])]),
                metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert doc["error"] == grpc_error.value.details()
        status, doc = await call(s, web, "POST", "/api/v1/changes", {"changes": [{"colour": "red"}]}, headers=auth)
        assert status == 400 and "colour" in doc["error"]

        # The change was built: watched (once started) to its end.
        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0&kinds=build.started"):
            assert (event["builder"], event["build_number"]) == ("ok", 1)
            break
        updates = await watch(s, web, "ok", 1)
        assert updates[-1][1] == "end" and all(name == "message" for _, name, _ in updates[:-1])
        final = updates[-2][2]["build"]
        assert (final["complete"], final["result"]) == (True, "SUCCESS")
        assert final["changes"][0]["revision"] == "abc123"


async def test_a_build_is_watched_live_to_its_end_and_again_after(cluster: Cluster) -> None:
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        status, _ = await call(s, web, "POST", "/api/v1/builders/slow/force",
                               {"properties": [{"name": "ticket", "value": "GAN-1"}]})
        assert status == 200
        status, doc = await call(s, web, "GET", "/api/v1/builders/slow/builds/9/watch")
        assert status == 404 and "no build number 9" in doc["error"]
        status, doc = await call(s, web, "GET", "/api/v1/builders/slow/builds/x/watch")
        assert status == 400 and "number" in doc["error"]

        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0&kinds=build.started"):
            assert (event["builder"], event["build_number"]) == ("slow", 1)
            break  # build 1 exists from now on
        updates = []
        url = f"{web.base}/api/v1/builders/slow/builds/1/watch"
        async for event_id, name, data in sse_events(s, url):
            updates.append((event_id, name, data))
            if name == "end":
                break
            if data["event"] is not None and data["event"]["kind"] == "step.started":
                status, _ = await call(s, web, "POST", "/api/v1/builders/slow/builds/1/stop", {"reason": "enough"})
                assert status == 200
        first = updates[0][2]
        assert first["event"] is None and first["build"]["number"] == 1 and updates[0][0] == ""
        events = [d["event"] for _, n, d in updates[1:-1]]
        assert [int(i) for i, _, _ in updates[1:-1]] == [e["id"] for e in events]  # resumable ids
        assert "build.finished" in [e["kind"] for e in events]
        assert updates[-2][2]["build"]["complete"] is True
        assert updates[-1] == ("", "end", {"builder": "slow", "number": 1})

        # A finished build: its final state at once, then `end`.
        again = await watch(s, web, "slow", 1)
        assert [n for _, n, _ in again] == ["message", "end"]
        assert again[0][2]["build"] == updates[-2][2]["build"]
