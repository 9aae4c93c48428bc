"""File primitives on the worker (mkdir/rmdir/stat/glob/upload/download) and the build's
artifacts: the part of the StepContext that moves files. One per build, owned by BuildRunner.

A transfer survives a lost worker stream: while the worker's session waits for it to come back
(its grace period), the step waits too, then goes on with a new request on the new stream: an
upload from the bytes already stored (FileCommand.offset), a download from its start (when its
source can be read again), mkdir/rmdir/stat/glob asked again (they are idempotent). Only a
worker that does not come back in time ends the build RETRY.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.model import Artifact
from coordinator.domain.ports import ArtifactStore, BuildRecorder, ByteSink, Clock
from coordinator.domain.workers.commands import (
    DOWNLOAD,
    GLOB,
    MKDIR,
    RMDIR,
    STAT,
    UPLOAD,
    UPLOAD_DIR,
    FileCommand,
    FileResult,
    TransferError,
    WorkerLost,
)
from coordinator.domain.workers.sessions import WorkerSession
from coordinator.domain.workers.transfers import Chunks, UploadProgress


class WorkerFiles:
    """Files on the worker and the build's artifacts. One primitive runs at a time, as the
    step's current transfer, so stopping the build cancels it."""

    def __init__(
        self,
        context: BuildContext,
        session: WorkerSession,
        builddir: str,
        builds: BuildRecorder,
        clock: Clock,
        artifacts: ArtifactStore | None = None,
        on_worker_wait: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._context = context  # the running step, whether the build was stopped, command ids
        self.build = context.build
        self.session = session
        self.builddir = builddir
        self.builds = builds
        self.clock = clock
        self._artifacts = artifacts
        self._current_transfer: str | None = None
        self._on_worker_wait = on_worker_wait  # told "worker disconnected, waiting ..." and ""

    def abandon(self, reason: str) -> None:
        """The build was stopped: cancel the running primitive, if any."""
        if self._current_transfer:
            self.session.files.abandon(self._current_transfer, reason)

    # -- files on the worker (paths relative to the builder directory unless absolute)
    def _file_command(self, op: str, path: str, max_size: int = 0, mode: int = 0, offset: int = 0) -> FileCommand:
        rid = self._context.command_id(self._context.running_step("file operations are"))
        return FileCommand(rid, op, self.builddir, path, max_size, mode, offset)

    async def _worker_back(self, lost: WorkerLost) -> None:
        """After a transfer lost its stream: return once the worker is back (the transfer goes
        on), else raise: `lost` when the worker's grace period ran out, TransferError when the
        build was stopped meanwhile."""
        if self.session.closed:
            raise lost
        back = asyncio.ensure_future(self.session.wait_attached(self._on_worker_wait))
        stopped = asyncio.ensure_future(self._context.stopped.wait())
        try:
            await asyncio.wait([back, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (back, stopped):
                task.cancel()
        if self._context.interrupted:
            raise TransferError(f"interrupted: {self._context.stopped_reason}")
        if not back.cancelled() and back.exception() is not None:
            raise lost
        if self._on_worker_wait is not None:
            await self._on_worker_wait("")  # the step runs again

    async def _transfer(self, cmd: FileCommand, run: Coroutine[Any, Any, FileResult]) -> FileResult:
        """Run a file primitive as the step's current one (so stopping the build cancels it)."""
        if self._context.interrupted:
            run.close()  # never started
            raise TransferError(f"interrupted: {self._context.stopped_reason}")
        self._current_transfer = cmd.request_id
        try:
            return await run
        finally:
            self._current_transfer = None

    async def _request(self, op: str, path: str) -> FileResult:
        while True:  # mkdir, rmdir, stat and glob are idempotent: asked again after a lost stream
            cmd = self._file_command(op, path)
            try:
                return await self._transfer(cmd, self.session.files.request(cmd))
            except WorkerLost as lost:
                await self._worker_back(lost)

    async def mkdir(self, path: str) -> None:
        """Create the directory `path` (and its parents) on the worker."""
        await self._request(MKDIR, path)

    async def rmdir(self, path: str) -> None:
        """Remove `path` on the worker, recursively (nothing to do if it does not exist)."""
        await self._request(RMDIR, path)

    async def stat(self, path: str) -> FileResult | None:
        """`path` on the worker (is_dir, size, mtime), or None when it does not exist."""
        result = await self._request(STAT, path)
        return result if result.exists else None

    async def glob(self, pattern: str) -> list[str]:
        """Paths on the worker matching `pattern` (relative patterns give relative paths)."""
        return list((await self._request(GLOB, pattern)).paths)

    async def upload(
        self, workersrc: str, sink: ByteSink, *, max_size: int = 0, directory: bool = False
    ) -> FileResult:
        """Copy the worker's file (or directory, as a tar stream) `workersrc` into `sink`;
        the sink is committed once all bytes arrived with the right sha256, else aborted.
        Raises TransferError (missing file, too large, damaged) or WorkerLost."""
        progress = UploadProgress()
        try:
            while True:
                op = UPLOAD_DIR if directory else UPLOAD
                cmd = self._file_command(op, workersrc, max_size, offset=progress.size)
                try:
                    result = await self._transfer(cmd, self.session.files.receive(cmd, sink.write, progress))
                    break
                except WorkerLost as lost:
                    await self._worker_back(lost)  # then resume after the bytes stored
        except BaseException:
            await sink.abort()
            raise
        await sink.commit()
        return result

    async def download(self, chunks: Chunks, workerdest: str, *, max_size: int = 0, mode: int = 0) -> FileResult:
        """Write `chunks` into the worker's file `workerdest` (verified by sha256, in place
        only once complete). Given as a function, the chunks are read again to start over
        after a lost stream."""
        while True:
            cmd = self._file_command(DOWNLOAD, workerdest, max_size, mode)
            source = chunks() if callable(chunks) else chunks
            try:
                return await self._transfer(cmd, self.session.files.send(cmd, source))
            except WorkerLost as lost:
                if not callable(chunks):
                    raise  # partly sent, and cannot be read again
                await self._worker_back(lost)
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            raise RuntimeError("this coordinator has no artifact store")
        return self._artifacts

    async def add_artifact(self, name: str, size: int, sha256: str) -> Artifact:
        """Record an artifact of this build, produced by the current step."""
        step = self._context.running_step("add_artifact is")
        return await self.builds.add_artifact(self.build, step, name, size, sha256, self.clock.now())
