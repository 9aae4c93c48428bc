"""The HTTP API end to end: a real coordinator and worker; curl-like requests with aiohttp. The
JSON is the gRPC messages' (defaults present, details as objects), errors are the gRPC API's
with HTTP codes, the event stream resumes by id, logs read by byte range."""

from __future__ import annotations

import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from coordinator.web.api.openapi import openapi
from protos.gantry.v1 import common_pb2, control_pb2
from tests.e2e.harness import Cluster, run_cli
from tests.e2e.web import Web, sse_events, started
from tests.security.test_authz_table import served_http_routes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def call(session: aiohttp.ClientSession, web: Web, method: str, path: str,
               body: Any = None, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, web.base + path, json=body, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def until_finished(session: aiohttp.ClientSession, web: Web, builder: str, since: int) -> dict[str, Any]:
    """The build.finished event of `builder`, read from the event stream after `since`."""
    async for _, _, event in sse_events(session, f"{web.base}/api/v1/events?since={since}&builders={builder}"):
        if event["kind"] == "build.finished":
            return event
    raise AssertionError("the stream ended")


async def test_force_read_and_stream_a_build_over_http(cluster: Cluster) -> None:
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        status, builders = await call(s, web, "GET", "/api/v1/builders")
        assert status == 200
        ok = next(b for b in builders["builders"] if b["name"] == "ok")
        params = {p["name"]: p for p in ok["force_parameters"]}
        assert params["jobs"]["default"] == 2 and params["jobs"]["type"] == "int"  # a value, not JSON text
        assert params["clean"]["required"] is False  # defaults are present

        status, forced = await call(s, web, "POST", "/api/v1/builders/ok/force", {
            "reason": "from curl", "branch": "gan-11",
            "properties": [{"name": "ticket", "value": "GAN-11"}, {"name": "jobs", "value": 3}],
        })
        assert status == 200, forced
        assert isinstance(forced["build_request_id"], int)  # int64 as a number
        finished = await until_finished(s, web, "ok", 0)
        assert finished["result"] == "SUCCESS"  # present although it is proto3's default
        assert isinstance(finished["details"], dict) and "details_json" not in finished

        status, build = await call(s, web, "GET", f"/api/v1/builders/ok/builds/{finished['build_number']}")
        assert status == 200
        assert (build["complete"], build["result"]) == (True, "SUCCESS")
        assert build["reason"] == "A build was forced: from curl"
        assert [st["name"] for st in build["steps"]] == ["compile", "test"]
        props = {p["name"]: p for p in build["properties"]}
        assert props["jobs"]["value"] == 3 and props["ticket"]["value"] == "GAN-11"

        status, page = await call(s, web, "GET", "/api/v1/builders/ok/builds?limit=5&with_steps=true")
        assert status == 200 and [st["name"] for st in page["builds"][0]["steps"]] == ["compile", "test"]
        status, page = await call(s, web, "GET", "/api/v1/builds?results=FAILURE")
        assert status == 200 and page["builds"] == []
        status, page = await call(s, web, "GET", "/api/v1/builders/ok/builds?branch=gan-11")
        assert status == 200 and [b["number"] for b in page["builds"]] == [build["number"]]
        status, page = await call(s, web, "GET", "/api/v1/builders/ok/builds?branch=gan-1")
        assert status == 200 and page["builds"] == []

        # The log, whole and by byte range.
        raw = f"/api/v1/builders/ok/builds/{build['number']}/steps/compile/logs/stdio/raw"
        async with s.get(web.base + raw) as resp:
            assert resp.status == 200 and resp.headers["Accept-Ranges"] == "bytes"
            whole = await resp.read()
        assert b"\x1b[32mgreen\x1b[0m compiled\n" in whole
        start = whole.index(b"green")
        async with s.get(web.base + raw, headers={"Range": f"bytes={start}-{start + 4}"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes {start}-{start + 4}/{len(whole)}"
            assert await resp.read() == b"green"
        async with s.get(web.base + raw, headers={"Range": f"bytes={len(whole) + 10}-"}) as resp:
            assert resp.status == 416


async def test_errors_are_the_grpc_apis_with_http_codes(cluster: Cluster) -> None:
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        bad_ticket = {"properties": [{"name": "ticket", "value": "nope"}]}
        status, doc = await call(s, web, "POST", "/api/v1/builders/ok/force", bad_ticket)
        assert status == 400 and doc["code"] == "INVALID_ARGUMENT"
        with pytest.raises(grpc.aio.AioRpcError) as grpc_error:
            await web.coord.control.ForceBuild(control_pb2.ForceBuildRequest(
                builder="ok", properties=[common_pb2.Property(name="ticket", value_json='"nope"')]))
        assert doc["error"] == grpc_error.value.details()  # the same message, word for word
        assert "ticket" in doc["error"]

        assert (await call(s, web, "GET", "/api/v1/builders/nope"))[0] == 404
        status, doc = await call(s, web, "GET", "/api/v1/builders/nope/builds/1")
        assert status == 404 and "nope" in doc["error"]
        status, doc = await call(s, web, "GET", "/api/v1/builds?limit=many")
        assert status == 400 and "limit" in doc["error"]
        status, doc = await call(s, web, "GET", "/api/v1/builds?colour=red")
        assert status == 400 and "colour" in doc["error"]
        status, doc = await call(s, web, "POST", "/api/v1/builders/ok/force", data=b"{not json")
        assert status == 400 and "JSON" in doc["error"]
        status, doc = await call(s, web, "POST", "/api/v1/builders/ok/force", {"priority": "high"})
        assert status == 400
        status, doc = await call(s, web, "POST", "/api/v1/builders/ok/builds/99/stop", {})
        assert status == 404
        status, doc = await call(s, web, "GET", "/api/v1/events?kinds=build.exploded")
        assert status == 400 and "build.exploded" in doc["error"]
        # The pages answer as the API does: a 404 page for a missing build, 400 for a bad number.
        async with s.get(f"{web.base}/builders/ok/builds/7") as resp:
            assert resp.status == 404 and "no build number 7" in await resp.text()
        status, doc = await call(s, web, "GET", "/builders/ok/builds/99999999999999999999?format=json")
        assert status == 400 and "out of range" in doc["error"]


async def test_stop_a_running_build_and_resume_the_stream_by_id(cluster: Cluster) -> None:
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        status, _ = await call(s, web, "POST", "/api/v1/builders/slow/force",
                               {"properties": [{"name": "ticket", "value": "GAN-1"}]})
        assert status == 200
        ids = []
        async for event_id, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0"):
            ids.append(int(event_id))
            assert event["id"] == int(event_id)
            if event["kind"] == "step.started":
                break
        status, doc = await call(s, web, "POST", "/api/v1/builders/slow/builds/1/stop", {"reason": "enough"})
        assert (status, doc) == (200, {"stopped": True})
        # Resume after the second event: the next one is the third, and the stream goes on to the end.
        resumed = []
        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events", {"Last-Event-ID": str(ids[1])}):
            resumed.append(event)
            if event["kind"] == "build.finished":
                break
        assert [e["id"] for e in resumed[: len(ids) - 2]] == ids[2:]
        assert resumed[-1]["result"] != "SUCCESS" and resumed[-1]["builder"] == "slow"


async def test_openapi_describes_what_is_served(cluster: Cluster) -> None:
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        status, spec = await call(s, web, "GET", "/api/v1/openapi.json")
        assert status == 200 and spec["openapi"].startswith("3.")
        assert "post" in spec["paths"]["/api/v1/builders/{builder}/force"]
        build = spec["components"]["schemas"]["Build"]["properties"]
        assert build["result"]["enum"][:3] == ["SUCCESS", "WARNINGS", "FAILURE"]
        assert "details" in spec["components"]["schemas"]["Event"]["properties"]
        # Every GET without path parameters answers 200 with the documented top-level fields.
        for path, ops in spec["paths"].items():
            if "{" in path or "get" not in ops or path == "/api/v1/events":
                continue
            if ops["get"]["tags"] == ["Views"]:  # a page: its JSON twin
                status, doc = await call(s, web, "GET", path + "?format=json")
                assert status == 200 and isinstance(doc, dict) and doc, path
                continue
            schema_ref = ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            fields = set(spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]["properties"])
            status, doc = await call(s, web, "GET", path)
            assert status == 200, (path, doc)
            assert set(doc) == fields, path


async def test_a_paused_worker_shows_live_on_the_workers_page_with_its_reason(cluster: Cluster) -> None:
    """The hold goes through the event stream (what repaints an open page) and the workers page's
    JSON twin and HTML say paused, why, and the effective capacity and where it comes from."""
    async with started(cluster) as web, aiohttp.ClientSession() as s:
        status, page = await call(s, web, "GET", "/workers?format=json")
        assert status == 200 and [(w["name"], w["state"]) for w in page["workers"]] == [("w1", "active")]
        code, _, err = await run_cli("worker", "pause", "w1", "--reason", "disk full",
                                     "--coordinator", web.coord.address)
        assert code == 0, err
        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0"):
            if event["kind"] == "worker.state":
                assert event["worker"] == "w1"
                break
        status, page = await call(s, web, "GET", "/workers?format=json")
        assert [(w["state"], w["state_reason"], w["capacity_reason"]) for w in page["workers"]] == [
            ("paused", "disk full", "config")]
        async with s.get(web.base + "/workers") as resp:
            html = await resp.text()
        assert "paused: disk full" in html and "4 (config)" in html


async def test_every_api_route_and_page_is_in_the_openapi_description(tmp_path: Path) -> None:
    """Derived from the router of a real coordinator's HTTP server: each API route, and each
    page (its JSON twin, `?format=json`), is described; only the machinery around them is not."""
    described = {(method.upper(), path) for path, ops in openapi()["paths"].items() for method in ops}
    machinery = ("/auth/", "/change_hook/", "/static", "/metrics", "/api/v1/openapi.json")
    missing = [(m, p) for m, p in await served_http_routes(tmp_path)
               if not p.startswith(machinery) and (m, p) not in described]
    assert missing == []
    assert ("GET", "/builders/{builder}") in described and ("POST", "/api/v1/changes") in described


GATED = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=1)],
    builders=[Builder("gated", workers=["w1"], steps=[ShellCommand(name="wait", command=["sh", "-c", Interpolate(
        "while [ ! -e GATE/go-%(prop:buildnumber)s ]; do sleep 0.05; done")])])],
    schedulers=[ForceScheduler("force", ["gated"])],
)
"""


async def test_the_builder_page_says_why_each_request_waits_and_when_it_should_start(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Each build waits for its own gate file: one finished build gives the estimate, a running
    one holds the only slot, and the request behind it is pending with its reason and expected
    start, on the page and in its JSON twin."""
    async with started(cluster, GATED.replace("GATE", str(tmp_path))) as web, aiohttp.ClientSession() as s:
        async def finished(number: int) -> None:
            async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0&builders=gated"):
                if event["kind"] == "build.finished" and event["build_number"] == number:
                    return

        assert (await call(s, web, "POST", "/api/v1/builders/gated/force", {}))[0] == 200
        (tmp_path / "go-1").touch()
        await finished(1)  # the history the estimate comes from
        for _ in range(2):
            assert (await call(s, web, "POST", "/api/v1/builders/gated/force", {}))[0] == 200
        async for _, _, event in sse_events(s, f"{web.base}/api/v1/events?since=0&builders=gated"):
            if event["kind"] == "build.started" and event["build_number"] == 2:
                break
        status, page = await call(s, web, "GET", "/builders/gated?format=json")
        assert status == 200 and len(page["pending"]) == 1
        [waiting] = page["pending"]
        assert waiting["reason"] and waiting["expected_start"] > 0, waiting
        async with s.get(f"{web.base}/builders/gated") as resp:
            html = await resp.text()
        assert waiting["reason"] in html or html_escape(waiting["reason"]) in html
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" data-unix=', html), html
        for n in (2, 3):
            (tmp_path / f"go-{n}").touch()
        await finished(3)
