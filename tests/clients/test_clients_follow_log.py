"""`GantryClient.follow_log` resumes from the last byte received after a broken stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from clients.client import GantryClient
from protos.gantry.v1 import logs_pb2, logs_pb2_grpc

DATA = bytes(range(256)) * 4  # 1 KiB, every byte value


class FakeLogs(logs_pb2_grpc.LogServiceServicer):
    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def FollowLog(
        self, request: logs_pb2.ReadLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.LogData]:
        self.offsets.append(request.offset)
        if len(self.offsets) == 1:
            yield logs_pb2.LogData(data=DATA[:300], offset=0)
            yield logs_pb2.LogData(data=DATA[300:500], offset=300)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "coordinator restarting")
        start = request.offset - 100  # a sloppy server sending some bytes again
        yield logs_pb2.LogData(data=DATA[start:800], offset=start)
        yield logs_pb2.LogData(data=DATA[800:], offset=800, eof=True)


async def test_follow_log_resumes_byte_exact() -> None:
    servicer = FakeLogs()
    server = grpc.aio.server()
    logs_pb2_grpc.add_LogServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with GantryClient(f"127.0.0.1:{port}", reconnect_backoff=(0.001, 0.01)) as client:
            async with asyncio.timeout(30):
                received = b"".join([part async for part in client.follow_log("b", 1, "compile")])
    finally:
        await server.stop(None)
    assert received == DATA
    assert servicer.offsets == [0, 500]
