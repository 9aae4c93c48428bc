"""Commands on the coordinator host (MasterShellCommand): the HostCommands port of the domain.

Each command runs in its own session (process group) so that stop and timeouts kill everything
it started. subprocess.Popen (vfork) rather than asyncio's subprocess API: on uvloop, libuv
forks, which runs grpc's fork handlers in the child. The exit is awaited in a thread (these
commands are rare); the output is read by the event loop and handed on in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from coordinator.domain.workers.commands import STDERR, STDOUT

READ_SIZE = 32 * 1024
OutputHandler = Callable[[int, bytes], Awaitable[None]]


class HostCommandRunner:
    """Starts commands in `base_dir` (the coordinator's data directory) or a directory below it;
    an absolute workdir is used as is (the configuration's author chose it)."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir

    def start(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str,
        env: Mapping[str, str],
        timeout: float,
        max_time: float,
        on_output: OutputHandler,
    ) -> HostCommand:
        cwd = self.base_dir / workdir if workdir else self.base_dir
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        return HostCommand(argv, cwd, {**os.environ, **env}, timeout, max_time, on_output)


class HostCommand:
    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float, max_time: float,
        on_output: OutputHandler,
    ) -> None:
        self._argv, self._cwd, self._env = argv, cwd, env
        self._timeout, self._max_time = timeout, max_time
        self._on_output = on_output
        self._popen: subprocess.Popen[bytes] | None = None
        self._reason = ""
        self._last_output = 0.0
        self._discarding: asyncio.Future[None] | None = None
        self._interrupted = asyncio.Event()

    def interrupt(self, reason: str) -> None:
        self._kill("interrupted")

    def _kill(self, reason: str) -> None:
        if self._reason:
            return
        self._reason = reason
        self._interrupted.set()
        if self._popen is not None and self._popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    async def wait(self) -> tuple[int, str]:
        if self._reason:
            return -1, self._reason
        try:
            self._cwd.mkdir(parents=True, exist_ok=True)
            popen = self._popen = subprocess.Popen(  # noqa: ASYNC220 - vfork, see the module doc
                self._argv, cwd=self._cwd, env=self._env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            return -1, f"failed to start: {self._argv[0]}: {exc.strerror or exc}"
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=16)
        assert popen.stdout is not None and popen.stderr is not None
        readers = [
            loop.run_in_executor(None, _read_all, popen.stdout, STDOUT, queue, loop),
            loop.run_in_executor(None, _read_all, popen.stderr, STDERR, queue, loop),
        ]
        exited = loop.run_in_executor(None, popen.wait)
        self._last_output = loop.time()
        watchdog = asyncio.ensure_future(self._watchdog(self._last_output))
        open_pipes = 2
        try:
            while open_pipes:
                item = await queue.get()
                if item is None:
                    open_pipes -= 1
                    continue
                self._last_output = loop.time()
                await self._on_output(*item)
            rc = await exited
            await asyncio.gather(*readers)
        finally:
            watchdog.cancel()
            if open_pipes:  # cancelled: kill the group, and let the reader threads finish
                self._kill(self._reason or "interrupted")
                self._discarding = asyncio.ensure_future(_discard(queue, open_pipes))
        return (rc if rc >= 0 else -1), self._reason

    async def _watchdog(self, started: float) -> None:
        """Kill after `timeout` seconds without output or `max_time` seconds in all."""
        loop = asyncio.get_running_loop()
        while not self._reason:
            deadlines = []
            if self._timeout > 0:
                deadlines.append((self._last_output + self._timeout, "timeout"))
            if self._max_time > 0:
                deadlines.append((started + self._max_time, "max_time"))
            if not deadlines:
                return
            when, why = min(deadlines)
            if loop.time() >= when:
                self._kill(why)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._interrupted.wait(), when - loop.time())


async def _discard(queue: asyncio.Queue[tuple[int, bytes] | None], open_pipes: int) -> None:
    """Output nobody stores any more: drained so that the reader threads reach EOF and end."""
    while open_pipes:
        if await queue.get() is None:
            open_pipes -= 1


def _read_all(
    pipe: object, channel: int, queue: asyncio.Queue[tuple[int, bytes] | None], loop: asyncio.AbstractEventLoop
) -> None:
    """In a thread: read the pipe to EOF, handing each piece to the loop (bounded queue)."""
    fd = pipe.fileno()  # type: ignore[attr-defined]
    try:
        while data := os.read(fd, READ_SIZE):
            asyncio.run_coroutine_threadsafe(queue.put((channel, data)), loop).result()
    finally:
        pipe.close()  # type: ignore[attr-defined]
        asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()
