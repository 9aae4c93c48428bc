"""HostCommandRunner (MasterShellCommand's port) with real processes on this host."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil

from coordinator.domain.workers.commands import STDERR, STDOUT
from coordinator.host_commands import HostCommandRunner


class Output:
    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.changed = asyncio.Event()

    async def __call__(self, channel: int, data: bytes) -> None:
        self.chunks.append((channel, data))
        self.changed.set()

    def data(self, channel: int) -> bytes:
        return b"".join(d for c, d in self.chunks if c == channel)

    async def until(self, text: bytes) -> None:
        async with asyncio.timeout(30):
            while text not in self.data(STDOUT):
                self.changed.clear()
                await self.changed.wait()


async def test_output_exit_code_env_and_directory(tmp_path: Path) -> None:
    out = Output()
    proc = HostCommandRunner(tmp_path).start(
        'echo "$GREETING"; pwd; echo oops >&2; exit 4', workdir="sub", env={"GREETING": "hi"},
        timeout=0, max_time=0, on_output=out,
    )
    assert await asyncio.wait_for(proc.wait(), 30) == (4, "")
    assert out.data(STDOUT) == f"hi\n{tmp_path / 'sub'}\n".encode()
    assert out.data(STDERR) == b"oops\n"


async def test_interrupt_kills_the_process_group(tmp_path: Path) -> None:
    out = Output()
    proc = HostCommandRunner(tmp_path).start(
        ["sh", "-c", "sleep 600 & echo child=$!; wait"], workdir="", env={}, timeout=0, max_time=0, on_output=out,
    )
    waiting = asyncio.ensure_future(proc.wait())
    await out.until(b"child=")
    await out.until(b"\n")  # the whole pid
    child = int(out.data(STDOUT).split(b"child=")[1].split()[0])
    proc.interrupt("stop")
    assert await asyncio.wait_for(waiting, 30) == (-1, "interrupted")
    # The group got SIGKILL with the shell; the kernel may take a moment to end the child.
    await asyncio.to_thread(_wait_gone, child)


def _wait_gone(pid: int) -> None:
    try:
        psutil.Process(pid).wait(timeout=30)  # raises TimeoutExpired if it survives
    except psutil.NoSuchProcess:
        pass


async def test_timeout_without_output_and_a_missing_program(tmp_path: Path) -> None:
    out = Output()
    runner = HostCommandRunner(tmp_path)
    # The clock starts before the shell does: the timeout leaves room for a slow start on a
    # loaded machine, so "started" is out before the silence that ends the command.
    proc = runner.start("echo started; sleep 600", workdir="", env={}, timeout=2, max_time=0, on_output=out)
    assert await asyncio.wait_for(proc.wait(), 30) == (-1, "timeout")
    assert out.data(STDOUT) == b"started\n"
    proc = runner.start(["/no/such/program"], workdir="", env={}, timeout=0, max_time=0, on_output=out)
    rc, reason = await asyncio.wait_for(proc.wait(), 30)
    assert rc == -1 and reason.startswith("failed to start: /no/such/program")
