"""File primitives on the worker (mkdir/rmdir/stat/glob/upload/download) and the build's
artifacts: the part of the StepContext that moves files. One per build, owned by BuildRunner."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Coroutine
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
)
from coordinator.domain.workers.sessions import WorkerSession


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

    def abandon(self, reason: str) -> None:
        """The build was stopped: cancel the running primitive, if any."""
        if self._current_transfer:
            self.session.files.abandon(self._current_transfer, reason)

    # -- files on the worker (paths relative to the builder directory unless absolute)
    def _file_command(self, op: str, path: str, max_size: int = 0, mode: int = 0) -> FileCommand:
        rid = self._context.command_id(self._context.running_step("file operations are"))
        return FileCommand(rid, op, self.builddir, path, max_size, mode)

    async def _transfer(self, cmd: FileCommand, run: Callable[[], Coroutine[Any, Any, FileResult]]) -> FileResult:
        """Run a file primitive as the step's current one (so stopping the build cancels it),
        journaled: a step replayed after a restart gets the result it got before. One cut by the
        restart is done again from the start (an upload rewrites the coordinator's file, a
        download the worker's: both are replaced whole, never appended to)."""
        fp = fingerprint(FILE, cmd.op, cmd.path, cmd.max_size, cmd.mode)
        replayed = await self._journal.next(FILE, fp)
        if replayed is not None:
            self._context.continue_after(replayed.command_id)
            return _result(replayed.data)
        if self._context.interrupted:
            raise TransferError(f"interrupted: {self._context.stopped_reason}")
        self._current_transfer = cmd.request_id
        try:
            result = await run()
        finally:
            self._current_transfer = None
        self._journal.done(self._journal.entry(FILE, fp, command_id=cmd.request_id, data=_data(result)))
        return result

    async def _request(self, op: str, path: str) -> FileResult:
        cmd = self._file_command(op, path)
        return await self._transfer(cmd, lambda: self.session.files.request(cmd))

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
        cmd = self._file_command(UPLOAD_DIR if directory else UPLOAD, workersrc, max_size)

        async def receive() -> FileResult:
            result = await self.session.files.receive(cmd, sink.write)
            await sink.commit()  # before it is journaled: a replay finds the file in place
            return result

        try:
            return await self._transfer(cmd, receive)
        except BaseException:
            await sink.abort()  # failed, or not run (interrupted, replay refused): nothing kept
            raise

    async def download(
        self, chunks: AsyncIterator[bytes], workerdest: str, *, max_size: int = 0, mode: int = 0
    ) -> FileResult:
        """Write `chunks` into the worker's file `workerdest` (verified by sha256, in place
        only once complete)."""
        cmd = self._file_command(DOWNLOAD, workerdest, max_size, mode)
        return await self._transfer(cmd, lambda: self.session.files.send(cmd, chunks))

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
