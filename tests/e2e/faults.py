"""Network faults between a worker and its coordinator, made for real.

`NetnsLink`: the worker runs in its own network namespace, joined to the host by a veth pair;
`cut()` sets the host end down, so packets vanish both ways (a blackhole: nobody is told, the
peers notice only by their heartbeats). Needs root and `ip`.
`ProxyLink`: the worker dials a TCP proxy owned by the test; `cut()` resets every connection
through it and refuses new ones until `restore()` (what a NAT or firewall restart does).
`link_for_test()` gives a NetnsLink where namespaces can be created, else a ProxyLink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol


class Link(Protocol):
    kind: str
    # Where the coordinator must listen for the worker to reach it.
    coordinator_host: str
    # Prefix of the worker's command line.
    wrap: Sequence[str]

    async def worker_address(self, coordinator_address: str) -> str: ...

    async def cut(self) -> None: ...

    async def restore(self) -> None: ...


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


class NetnsLink:
    kind = "netns"

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{os.urandom(2).hex()}"
        self.netns = f"gantry-{tag}"
        self.host_dev, self.ns_dev = f"gh{tag}"[:15], f"gn{tag}"[:15]
        # A /30 of 10.213.0.0/16 picked at random: parallel test runs do not collide.
        base = 0x0AD50000 | (int.from_bytes(os.urandom(2), "big") & 0xFFFC)
        self.coordinator_host = socket.inet_ntoa(struct.pack("!I", base + 1))
        self.worker_host = socket.inet_ntoa(struct.pack("!I", base + 2))
        self.wrap: Sequence[str] = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.netns]

    def create(self) -> None:
        _ip("netns", "add", self.netns)
        try:
            _ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev)
            _ip("link", "set", self.ns_dev, "netns", self.netns)
            _ip("addr", "add", f"{self.coordinator_host}/30", "dev", self.host_dev)
            _ip("link", "set", self.host_dev, "up")
            inside = ["netns", "exec", self.netns, "ip"]
            _ip(*inside, "addr", "add", f"{self.worker_host}/30", "dev", self.ns_dev)
            _ip(*inside, "link", "set", self.ns_dev, "up")
            _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise

    def destroy(self) -> None:
        _ip("link", "del", self.host_dev, check=False)
        _ip("netns", "del", self.netns, check=False)

    async def worker_address(self, coordinator_address: str) -> str:
        return coordinator_address  # it listens on the veth's host address

    async def cut(self) -> None:
        _ip("link", "set", self.host_dev, "down")

    async def restore(self) -> None:
        _ip("link", "set", self.host_dev, "up")


class ProxyLink:
    kind = "proxy"
    coordinator_host = "127.0.0.1"
    wrap: Sequence[str] = ()

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._target = ("", 0)
        self._cut = False
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def worker_address(self, coordinator_address: str) -> str:
        host, port = coordinator_address.rsplit(":", 1)
        self._target = (host, int(port))
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.close()

    async def cut(self) -> None:
        self._cut = True
        for pair in list(self._pairs):
            for w in pair:
                _reset(w)

    async def restore(self) -> None:
        self._cut = False

    async def aclose(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped NAT mapping answers."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def netns_available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@asynccontextmanager
async def link_for_test(prefer_netns: bool = True) -> AsyncIterator[Link]:
    """A NetnsLink when namespaces can be created here (and preferred), else a ProxyLink."""
    if prefer_netns and netns_available():
        netns = NetnsLink()
        try:
            netns.create()
        except (subprocess.CalledProcessError, OSError):
            pass  # no namespaces here (a container without CAP_NET_ADMIN): use the proxy
        else:
            try:
                yield netns
            finally:
                netns.destroy()
            return
    proxy = ProxyLink()
    try:
        yield proxy
    finally:
        await proxy.aclose()
