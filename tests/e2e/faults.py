"""Network faults between a worker and its coordinator, made for real.

`NetnsLink`: the worker runs in its own network namespace, joined to the host by a veth pair;
`cut()` sets the host end down, so packets vanish both ways (a blackhole: nobody is told, the
peers notice only by their heartbeats). Needs root and `ip`.
`ProxyLink`: the worker dials a TCP proxy owned by the test; `cut()` resets every connection
through it and refuses new ones until `restore()` (what a NAT or firewall restart does).
`link_for_test()` gives a NetnsLink where namespaces can be created, else a ProxyLink.
A NetnsLink made with `cut_with="iptables"` cuts with iptables DROP both ways instead, and
`impair()` adds delay and loss with `tc netem` on both veth ends (or loss alone with iptables
where the kernel has no netem), and `shape()` makes a slow link with a real queue (tbf). Rules
and qdiscs live in the namespace or on its veth, so the host's own rules are never touched, and
deleting the namespace removes them all.
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


def _tc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tc", *args], capture_output=True, text=True, timeout=30, check=check)


class FaultUnavailable(Exception):
    """This machine cannot make the fault (the message says why)."""


class NetnsLink:
    kind = "netns"

    def __init__(self, cut_with: str = "link") -> None:
        assert cut_with in ("link", "iptables"), cut_with
        self.cut_with = cut_with
        self.kind = "netns" if cut_with == "link" else "netns+iptables"
        # iptables rules added in the namespace, deleted again by restore()/unimpair().
        self._cut_rules: list[list[str]] = []
        self._loss_rules: list[list[str]] = []
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

    def _in_ns(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _ip("netns", "exec", self.netns, *cmd, check=check)

    def _iptables(self, flag: str, rule: list[str]) -> None:
        # -w: wait for the xtables lock rather than fail (other namespaces' tests may hold it).
        self._in_ns("iptables", "-w", flag, *rule)

    async def cut(self) -> None:
        if self.cut_with == "link":
            _ip("link", "set", self.host_dev, "down")
            return
        for chain in ("INPUT", "OUTPUT"):  # both ways, as seen from inside the worker's netns
            rule = [chain, "-j", "DROP"]
            self._iptables("-A", rule)
            self._cut_rules.append(rule)

    async def restore(self) -> None:
        if self.cut_with == "link":
            _ip("link", "set", self.host_dev, "up")
            return
        while self._cut_rules:
            self._iptables("-D", self._cut_rules.pop())

    def netem_available(self) -> bool:
        """Whether this kernel has the netem qdisc (tried on the namespace's loopback)."""
        tried = self._in_ns("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check=False)
        if tried.returncode != 0:
            return False
        self._in_ns("tc", "qdisc", "del", "dev", "lo", "root", check=False)
        return True

    async def impair(self, *, delay_ms: int, jitter_ms: int, loss_percent: float) -> None:
        """Delay (± jitter) and random loss on both ends of the veth: both directions."""
        netem = ["netem", "delay", f"{delay_ms}ms", f"{jitter_ms}ms", "loss", f"{loss_percent}%"]
        _ip("netns", "exec", self.netns, "tc", "qdisc", "add", "dev", self.ns_dev, "root", *netem)
        _tc("qdisc", "add", "dev", self.host_dev, "root", *netem)

    async def shape(self, *, rate: str, burst: str, latency: str) -> None:
        """A slow link both ways with the tbf qdisc (in kernels without netem too): past `rate`,
        packets wait in the kernel's queue for up to `latency` (real queueing delay), then drop."""
        tbf = ["tbf", "rate", rate, "burst", burst, "latency", latency]
        self._in_ns("tc", "qdisc", "add", "dev", self.ns_dev, "root", *tbf)
        _tc("qdisc", "add", "dev", self.host_dev, "root", *tbf)

    def overlimits(self) -> int:
        """Packets shape()'s qdiscs held back (queued or dropped) for exceeding the rate."""
        listings = [
            self._in_ns("tc", "-s", "qdisc", "show", "dev", self.ns_dev).stdout,
            _tc("-s", "qdisc", "show", "dev", self.host_dev).stdout,
        ]
        words = " ".join(listings).replace(",", " ").replace(")", " ").split()
        return sum(int(words[i + 1]) for i, w in enumerate(words) if w == "overlimits")

    async def lose(self, *, loss_percent: float) -> None:
        """Random loss both ways with iptables' statistic match (no netem needed)."""
        probability = f"{loss_percent / 100:.4f}"
        for chain in ("INPUT", "OUTPUT"):
            rule = [chain, "-m", "statistic", "--mode", "random", "--probability", probability, "-j", "DROP"]
            self._iptables("-A", rule)
            self._loss_rules.append(rule)

    def dropped(self) -> int:
        """Packets the loss rules of lose() have dropped so far (both ways)."""
        listing = self._in_ns("iptables", "-w", "-L", "-v", "-x", "-n").stdout
        rows = [line.split() for line in listing.splitlines() if "statistic mode random" in line]
        return sum(int(row[0]) for row in rows)

    async def unimpair(self) -> None:
        """Remove delay, loss and shaping (whichever of impair()/lose()/shape() was used)."""
        self._in_ns("tc", "qdisc", "del", "dev", self.ns_dev, "root", check=False)
        _tc("qdisc", "del", "dev", self.host_dev, "root", check=False)
        while self._loss_rules:
            self._iptables("-D", self._loss_rules.pop())


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
async def netns_link(cut_with: str = "link") -> AsyncIterator[NetnsLink]:
    """A NetnsLink, or FaultUnavailable saying why this machine cannot make one."""
    if not netns_available():
        raise FaultUnavailable("network namespaces need root and `ip` (iproute2)")
    if cut_with == "iptables" and shutil.which("iptables") is None:
        raise FaultUnavailable("`iptables` is not installed (Debian package iptables; .ci/run installs it)")
    link = NetnsLink(cut_with)
    try:
        link.create()
    except (subprocess.CalledProcessError, OSError) as e:
        raise FaultUnavailable(f"cannot create a network namespace here: {e}") from e
    try:
        yield link
    finally:
        # Deleting the namespace drops its iptables rules and its end of the veth with it.
        with contextlib.suppress(Exception):
            await link.unimpair()
        link.destroy()


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
