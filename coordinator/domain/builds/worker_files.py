"""File primitives on the worker (mkdir/rmdir/stat/glob/upload/download) and the build's
artifacts: the part of the StepContext that moves files. One per build, owned by BuildRunner.

A transfer survives a lost worker stream: while the worker's session waits for it to come back
(its grace period), the step waits too, then goes on with a new request on the new stream: an
upload from the bytes already stored (FileCommand.offset), a download from its start (when its
source can be read again), mkdir/rmdir/stat/glob asked again (they are idempotent). Only a
worker that does not come back in time ends the build RETRY. Each primitive is one journaled
action however many times it was asked (journal.py): a step replayed after a coordinator
restart gets the result it got before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.journal import FILE, StepJournal, fingerprint
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

Attempt = Callable[[FileCommand], Coroutine[Any, Any, FileResult]]


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
        *,
        journal: StepJournal,
        on_worker_wait: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._journal = journal
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
    def _file_command(self, op: str, path: str, max_size: int, mode: int, offset: int) -> FileCommand:
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

    async def _transfer(
        self, op: str, path: str, attempt: Attempt, *,
        max_size: int = 0, mode: int = 0, offset: Callable[[], int] = lambda: 0, again: bool = True,
    ) -> FileResult:
        """Run a file primitive as the step's current one (so stopping the build cancels it),
        journaled: a step replayed after a restart gets the result it got before. One cut by the
        restart is done again from the start (an upload rewrites the coordinator's file, a
        download the worker's: both are replaced whole, never appended to). One cut by a lost
        stream is asked again once the worker is back, from `offset()` (unless not `again`)."""
        fp = fingerprint(FILE, op, path, max_size, mode)
        replayed = await self._journal.next(FILE, fp)
        if replayed is not None:
            self._context.continue_after(replayed.command_id)
            return _result(replayed.data)
        while True:
            if self._context.interrupted:
                raise TransferError(f"interrupted: {self._context.stopped_reason}")
            cmd = self._file_command(op, path, max_size, mode, offset())
            self._current_transfer = cmd.request_id
            try:
                result = await attempt(cmd)
            except WorkerLost as lost:
                if not again:
                    raise
                cut = lost
            else:
                break
            finally:
                self._current_transfer = None
            await self._worker_back(cut)
        self._journal.done(self._journal.entry(FILE, fp, command_id=cmd.request_id, data=_data(result)))
        return result

    async def _request(self, op: str, path: str) -> FileResult:
        # The session's files are looked up per attempt: a new stream brings new ones.
        return await self._transfer(op, path, lambda cmd: self.session.files.request(cmd))

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

        async def receive(cmd: FileCommand) -> FileResult:
            result = await self.session.files.receive(cmd, sink.write, progress)
            await sink.commit()  # before it is journaled: a replay finds the file in place
            return result

        op = UPLOAD_DIR if directory else UPLOAD
        try:
            # After a lost stream: resume after the bytes stored.
            return await self._transfer(op, workersrc, receive, max_size=max_size, offset=lambda: progress.size)
        except BaseException:
            await sink.abort()  # failed, or not run (interrupted, replay refused): nothing kept
            raise

    async def download(self, chunks: Chunks, workerdest: str, *, max_size: int = 0, mode: int = 0) -> FileResult:
        """Write `chunks` into the worker's file `workerdest` (verified by sha256, in place
        only once complete). Given as a function, the chunks are read again to start over
        after a lost stream."""

        async def send(cmd: FileCommand) -> FileResult:
            source = chunks() if callable(chunks) else chunks
            try:
                return await self.session.files.send(cmd, source)
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()

        # Partly sent chunks that cannot be read again cannot start over.
        return await self._transfer(DOWNLOAD, workerdest, send, max_size=max_size, mode=mode, again=callable(chunks))

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            raise RuntimeError("this coordinator has no artifact store")
        return self._artifacts

    async def add_artifact(self, name: str, size: int, sha256: str) -> Artifact:
        """Record an artifact of this build, produced by the current step."""
        step = self._context.running_step("add_artifact is")
        return await self.builds.add_artifact(self.build, step, name, size, sha256, self.clock.now())


def _data(result: FileResult) -> str:
    return json.dumps(dataclasses.asdict(result), sort_keys=True)


def _result(data: str) -> FileResult:
    fields = json.loads(data) if data else {}
    fields["paths"] = tuple(fields.get("paths", ()))
    return FileResult(**fields)
