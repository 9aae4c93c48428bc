"""Per-client message-size limits: an anonymous caller may send little, an authenticated one
more, a role its own; over gRPC (RESOURCE_EXHAUSTED) and HTTP (413) alike, naming the limit.
Reflection's client stream is checked message by message; health checks are anonymous."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from coordinator.app import Coordinator
from coordinator.config.loader import validate
from coordinator.config.objects import MasterConfig
from coordinator.config.security import Auth
from coordinator.domain.auth import actions
from coordinator.domain.auth.authz import Allow, Authz, RolesFromGroups
from protos.gantry.v1 import control_pb2, control_pb2_grpc

KIB = 1024


@dataclass
class Site:
    coord: Coordinator
    tokens: dict[str, str]

    @property
    def http(self) -> str:
        assert self.coord.web is not None
        return f"http://127.0.0.1:{self.coord.web.port}"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    auth = Auth(max_message_anonymous=4 * KIB, max_message=64 * KIB, max_message_roles={"small": 2 * KIB})
    authz = Authz(roles=[RolesFromGroups()], rules=[Allow(actions.ALL)], anonymous_read=True)
    coord = Coordinator(MasterConfig(auth=auth, authz=authz), tmp_path / "d", "127.0.0.1:0", http="127.0.0.1:0")
    await coord.start()
    assert coord.gate is not None and coord.gate.tokens is not None
    tokens = {"user": (await coord.gate.tokens.create("ulla", []))[0],
              "small": (await coord.gate.tokens.create("sam", ["small"]))[0]}
    try:
        yield Site(coord, tokens)
    finally:
        await coord.aclose()


async def list_builds(site: Site, size: int, token: str = "") -> grpc.StatusCode | str:
    """ListBuilds with a branch of `size` characters: OK, or the refusal's code and details."""
    md = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{site.coord.port}") as ch:
        try:
            await control_pb2_grpc.ControlServiceStub(ch).ListBuilds(
                control_pb2.ListBuildsRequest(branch="b" * size), metadata=md, timeout=30)
        except grpc.aio.AioRpcError as err:
            return f"{err.code().name}: {err.details()}"
    return grpc.StatusCode.OK


async def test_each_caller_has_its_own_limit_over_grpc(site: Site) -> None:
    assert await list_builds(site, 3 * KIB) == grpc.StatusCode.OK  # anonymous read, under 4 KiB
    refused = await list_builds(site, 5 * KIB)
    assert refused == ("RESOURCE_EXHAUSTED: the request is 5123 bytes; an anonymous caller may send at most "
                       "4096 bytes (Auth(max_message_anonymous=..., max_message_roles=...) in the configuration)")
    assert await list_builds(site, 60 * KIB, site.tokens["user"]) == grpc.StatusCode.OK
    assert str(await list_builds(site, 65 * KIB, site.tokens["user"])).startswith(
        "RESOURCE_EXHAUSTED: the request is 66564 bytes; ulla may send at most 65536 bytes")
    assert "sam may send at most 2048 bytes" in str(await list_builds(site, 3 * KIB, site.tokens["small"]))


async def test_health_checks_and_reflection_streams_are_sized_too(site: Site) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{site.coord.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=30)).status == \
            health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest(service="s" * 5 * KIB), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        md = (("authorization", f"Bearer {site.tokens['small']}"),)
        stream = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="x" * 3 * KIB),
        ]), metadata=md, timeout=30)
        replies = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for reply in stream:
                replies.append(reply)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 2048 bytes" in str(err.value.details())
        assert len(replies) == 1 and replies[0].list_services_response.service  # the first one was answered


async def test_each_caller_has_its_own_limit_over_http(site: Site) -> None:
    body = {"reason": "r" * 5 * KIB}
    async with aiohttp.ClientSession() as http:
        url = f"{site.http}/api/v1/builders/none/force"
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {site.tokens['small']}"}) as r:
            doc = await r.json()
            assert r.status == 413 and doc["code"] == "RESOURCE_EXHAUSTED", doc
            assert "sam may send at most 2048 bytes" in doc["error"]
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {site.tokens['user']}"}) as r:
            assert r.status == 404, await r.text()  # within ulla's limit: the builder is missing
        # Chunked (no Content-Length): read, then measured.
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"reason": "'
            yield b"r" * 5 * KIB
            yield b'"}'
        async with http.post(url, data=chunks(), headers={"Authorization": f"Bearer {site.tokens['small']}",
                                                         "Content-Type": "application/json"}) as r:
            assert r.status == 413


def test_limits_are_checked_with_the_configuration() -> None:
    cfg = MasterConfig(auth=Auth(max_message=0, max_message_roles={"viewer": "1 MiB"}))  # type: ignore[dict-item]
    problems = validate(cfg, Path("master.py"))
    assert any("max_message must be a number of bytes between 1 and" in str(p) for p in problems), problems
    assert any("max_message_roles['viewer']" in str(p) for p in problems), problems
