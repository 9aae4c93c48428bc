"""A real IRC server for the tests (Debian's ngircd, in the foreground, on a loopback port
held by the test) and a small IRC client of our own to sit in its channels."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.net import port_of

NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
TIMEOUT = 30.0

CONF = """\
[Global]
Name = irc.gantry.test
Info = Gantry test server
AdminInfo1 = tests
AdminInfo2 = tests
AdminEMail = tests@example.org
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
MotdPhrase = test server
[Limits]
MaxConnectionsIP = 0
PingTimeout = 120
PongTimeout = 20
[Options]
DNS = no
Ident = no
PAM = no
"""


class IrcServer:
    """ngircd on the held port `sock`; start() waits for its "Now listening" line."""

    def __init__(self, sock: socket.socket, workdir: Path) -> None:
        if not Path(NGIRCD).exists():
            pytest.skip("ngircd is not installed (apt-get install ngircd)")
        self.port = port_of(sock)
        self.workdir = workdir
        self.conf = workdir / "ngircd.conf"
        self.conf.write_text(CONF.format(port=self.port, dir=workdir))
        self.proc: asyncio.subprocess.Process | None = None
        self.output: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            NGIRCD, "-n", "-f", str(self.conf),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await self.proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("ngircd exited:\n" + "".join(self.output))
                self.output.append(line)
                if "Now listening on" in line:
                    break
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        while line := await proc.stdout.readline():
            self.output.append(line.decode(errors="replace"))

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class Line:
    prefix: str
    command: str
    params: list[str]

    @property
    def nick(self) -> str:
        return self.prefix.split("!", 1)[0]

    @property
    def text(self) -> str:
        return self.params[-1] if self.params else ""


def parse(raw: str) -> Line:
    """Independent of the bot's own parser on purpose."""
    prefix = ""
    if raw.startswith(":"):
        prefix, raw = raw[1:].split(" ", 1)
    head, _, trailing = raw.partition(" :")
    words = head.split()
    return Line(prefix, words[0].upper(), words[1:] + ([trailing] if _ else []))


@dataclass
class IrcClient:
    """A person on IRC: connects, joins, talks, and keeps every line it receives."""

    nick: str
    port: int
    lines: list[Line] = field(default_factory=list)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self) -> IrcClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.nick} 0 * :test client")
        await self.wait(lambda m: m.command == "001", "registration")
        return self

    def send(self, line: str) -> None:
        assert self.writer is not None
        self.writer.write(line.encode() + b"\r\n")

    async def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        await self.wait(lambda m: m.command == "366" and m.params[1].lower() == channel.lower(), f"joined {channel}")

    def say(self, target: str, text: str) -> None:
        self.send(f"PRIVMSG {target} :{text}")

    async def _read(self) -> None:
        assert self.reader is not None
        while raw := await self.reader.readline():
            line = parse(raw.decode(errors="replace").rstrip("\r\n"))
            if line.command == "PING":
                self.send(f"PONG :{line.text}")
            self.lines.append(line)
            self._new.set()

    async def wait(self, match: object, what: str, timeout: float = TIMEOUT, since: int = 0) -> Line:
        """The first line (from index `since`) that `match` accepts; bounded by a deadline."""
        assert callable(match)
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for line in self.lines[seen:]:
                seen += 1
                if match(line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = "\n".join(f"  {x.prefix} {x.command} {x.params}" for x in self.lines[since:])
                raise AssertionError(f"{self.nick}: no {what} within {timeout:g}s; received:\n{got}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    async def said(self, sender: str, target: str, contains: str, since: int = 0) -> Line:
        """The first PRIVMSG/NOTICE from `sender` to `target` containing `contains`."""
        return await self.wait(
            lambda m: m.command in ("PRIVMSG", "NOTICE") and m.nick.lower() == sender.lower()
            and m.params[0].lower() == target.lower() and contains in m.text,
            f"message from {sender} to {target} with {contains!r}", since=since,
        )

    def mark(self) -> int:
        return len(self.lines)

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
