"""Worker authentication hardening: secrets given as SHA-256 hashes or from the secrets
providers, wrong secrets limited per address and per name and logged once per window."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig, Worker
from coordinator.config.secrets import SecretInAFile
from coordinator.domain.properties.renderables import Secret
from protos.gantry.v1 import worker_pb2, worker_pb2_grpc


@pytest.fixture
async def coord(tmp_path: Path) -> AsyncIterator[Coordinator]:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "w2").write_text("from-a-provider\n")
    cfg = MasterConfig(
        workers=[Worker("w1", "sha256:" + hashlib.sha256(b"hashed-secret").hexdigest()),
                 Worker("w2", Secret("w2")),  # type: ignore[arg-type]
                 Worker("w3", "plain")],
        secretsProviders=[SecretInAFile(str(secrets))],
    )
    c = Coordinator(cfg, tmp_path / "d", "127.0.0.1:0")
    await c.start()
    try:
        yield c
    finally:
        await c.aclose()


async def hello(coord: Coordinator, name: str, secret: str) -> tuple[str, str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{coord.port}") as ch:
        call = worker_pb2_grpc.WorkerServiceStub(ch).Connect()
        try:
            await call.write(worker_pb2.WorkerMessage(hello=worker_pb2.Hello(name=name, secret=secret, max_builds=1)))
            reply = await asyncio.wait_for(call.read(), 30)
            assert reply is not grpc.aio.EOF
            return reply.WhichOneof("msg") or "", ""
        except grpc.aio.AioRpcError as err:
            return err.code().name, err.details() or ""
        finally:
            call.cancel()


async def test_hashed_and_provided_secrets(coord: Coordinator) -> None:
    assert await hello(coord, "w1", "hashed-secret") == ("welcome", "")
    assert (await hello(coord, "w1", "sha256:" + hashlib.sha256(b"hashed-secret").hexdigest()))[0] == \
        "UNAUTHENTICATED"  # the hash itself is not the secret
    assert await hello(coord, "w2", "from-a-provider") == ("welcome", "")
    assert (await hello(coord, "w3", "wrong"))[1] == (await hello(coord, "ghost", "wrong"))[1]


async def test_wrong_secrets_are_limited_and_logged_once(coord: Coordinator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    replies = [await hello(coord, "w3", f"guess-{i}") for i in range(12)]
    assert all(code == "UNAUTHENTICATED" for code, _ in replies)
    assert [d for _, d in replies[:10]] == ["wrong worker name or secret"] * 10
    assert "too many failed attempts" in replies[10][1]
    # Blocked: even the right secret waits out the window (the guesser cannot tell it found it).
    code, details = await hello(coord, "w3", "plain")
    assert code == "UNAUTHENTICATED" and "too many failed attempts" in details
    refused = [r.getMessage() for r in caplog.records if "refused worker" in r.getMessage()]
    assert len(refused) == 1, refused
    # A long, hostile name is logged short and escaped.
    await hello(coord, "x\n" * 3000, "nope")
    lines = [r.getMessage() for r in caplog.records if "refused worker" in r.getMessage()]
    assert len(lines) <= 2 and all(len(line) < 400 and "\n" not in line for line in lines)
