"""A child process whose exit can be awaited, with no thread and no global child watcher.

Why not asyncio's subprocess API: on uvloop, libuv spawns with fork(), which runs grpc's
pthread_atfork child handlers, and the child can crash before exec (we saw SIGSEGV). Also,
Python 3.11's default child watcher starts one thread per child. subprocess.Popen uses vfork()
(no fork handlers run), and a pidfd watched by the event loop tells us when the child exits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

# Fallback when pidfds are unavailable (old kernels, macOS): poll, backing off to this interval.
_MAX_POLL_INTERVAL = 0.1


class ChildProcess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """Exit code, or -N if killed by signal N; None while running."""
        return self._popen.returncode

    async def wait(self) -> int:
        if self._popen.poll() is not None:
            return self._popen.returncode
        try:
            pidfd = os.pidfd_open(self.pid)  # type: ignore[attr-defined,unused-ignore]
        except (AttributeError, OSError):
            return await self._poll()
        try:
            loop = asyncio.get_running_loop()
            while self._popen.poll() is None:
                readable = loop.create_future()
                loop.add_reader(pidfd, readable.set_result, None)
                try:
                    await readable
                finally:
                    loop.remove_reader(pidfd)
            return self._popen.returncode
        finally:
            os.close(pidfd)

    async def _poll(self) -> int:
        interval = 0.001
        while self._popen.poll() is None:
            await asyncio.sleep(interval)
            interval = min(interval * 2, _MAX_POLL_INTERVAL)
        return self._popen.returncode


def spawn(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: int, stderr: int
) -> ChildProcess:
    """Start `argv` in a new session (own process group), stdin from /dev/null."""
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    return ChildProcess(popen)
