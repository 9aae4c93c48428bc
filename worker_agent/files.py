"""File primitives of the worker: mkdir, rmdir, stat, glob, and file transfers.

The worker stays dumb (as Buildbot's worker commands): it does what one FileCommand asks and
answers with one FileResult. Paths are relative to basedir/builder_dir unless absolute, as in
Buildbot. Transfers move in CHUNK_SIZE chunks, at most `window` unacknowledged, and carry a
sha256 the receiver checks. Errors (a missing file, a full disk) are answered, never raised.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from protos.gantry.v1 import worker_pb2
from worker_agent.flow import FlowWindow

log = logging.getLogger("gantry.worker")

# gRPC costs ~80 us per message: large chunks keep the message count (the cost) low.
CHUNK_SIZE = 256 * 1024
Op = worker_pb2.FileCommand
Send = Callable[[worker_pb2.WorkerMessage], Awaitable[None]]


class FileOpError(Exception):
    """An expected failure, answered as FileResult.error."""


def resolve(basedir: Path, builder_dir: str, path: str) -> Path:
    """`path` under basedir/builder_dir, or `path` itself when absolute (as in Buildbot)."""
    if not path:
        raise FileOpError("no path given")
    if os.path.isabs(path):
        return Path(path)
    return Path(os.path.abspath(os.path.join(basedir, builder_dir, path)))


def _describe(exc: OSError, path: str) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {path}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {path}"
    return f"{path}: {exc.strerror or exc}"


class _Download:
    """One file the coordinator is sending: written to a temporary name, renamed when verified."""

    def __init__(self, cmd: worker_pb2.FileCommand, target: Path) -> None:
        self.cmd = cmd
        self.target = target
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0
        self.seq = 0

    def write(self, chunk: worker_pb2.FileData) -> None:
        if chunk.seq != self.seq + 1:
            raise FileOpError(f"chunk {chunk.seq} out of order (expected {self.seq + 1})")
        self.seq = chunk.seq
        self.size += len(chunk.data)
        if self.cmd.max_size and self.size > self.cmd.max_size:
            raise FileOpError(f"file exceeds maxsize ({self.cmd.max_size} bytes)")
        self.hash.update(chunk.data)
        self.file.write(chunk.data)

    def finish(self, sha256: str) -> None:
        self.file.close()
        if sha256 != self.hash.hexdigest():
            raise FileOpError("checksum mismatch: the file arrived damaged")
        if self.cmd.mode:
            os.chmod(self.tmp, self.cmd.mode)
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class FileOps:
    """The file primitives of one connection; `send` puts a message on the stream."""

    def __init__(self, basedir: Path, send: Send, window: int) -> None:
        self._basedir = basedir
        self._send = send
        self._window = window
        self._uploads: dict[str, tuple[FlowWindow, asyncio.Event]] = {}
        self._downloads: dict[str, _Download] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def transferring(self) -> bool:
        """Whether an upload or download is in flight."""
        return bool(self._uploads or self._downloads)

    # -- from the coordinator
    def command(self, cmd: worker_pb2.FileCommand) -> None:
        if cmd.op == Op.DOWNLOAD:
            # At once: its first chunks follow on the stream before a task would run.
            self._start_download(cmd)
            return
        task = asyncio.get_running_loop().create_task(self._run(cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def ack(self, ack: worker_pb2.FileAck) -> None:
        up = self._uploads.get(ack.request_id)
        if up is not None:
            up[0].ack(ack.seq)

    def cancel(self, cancel: worker_pb2.FileCancel) -> None:
        up = self._uploads.get(cancel.request_id)
        if up is not None:
            log.info("transfer %s cancelled: %s", cancel.request_id, cancel.reason)
            up[1].set()
            up[0].ack(2**62)  # wake a sender waiting for room
        down = self._downloads.pop(cancel.request_id, None)
        if down is not None:
            down.discard()

    def data(self, chunk: worker_pb2.FileData) -> None:
        """A download chunk: written at once (local disk), acknowledged, finished on eof."""
        down = self._downloads.get(chunk.request_id)
        if down is None:
            return  # of a transfer that already failed
        try:
            down.write(chunk)
            if chunk.eof:
                del self._downloads[chunk.request_id]
                down.finish(chunk.sha256)
                self._answer(worker_pb2.FileResult(request_id=chunk.request_id, size=down.size))
            else:
                ack = worker_pb2.FileAck(request_id=chunk.request_id, seq=chunk.seq)
                self._post(worker_pb2.WorkerMessage(file_ack=ack))
        except (FileOpError, OSError) as exc:
            self._downloads.pop(chunk.request_id, None)
            down.discard()
            error = str(exc) if isinstance(exc, FileOpError) else _describe(exc, down.cmd.path)
            self._answer(worker_pb2.FileResult(request_id=chunk.request_id, error=error))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for down in self._downloads.values():
            down.discard()
        self._downloads.clear()

    # -- the primitives
    async def _run(self, cmd: worker_pb2.FileCommand) -> None:
        if cmd.op in (Op.UPLOAD, Op.UPLOAD_DIR):
            resumed = f" from byte {cmd.offset}" if cmd.offset else ""
            log.info("%s: %s %s%s", cmd.builder_dir, Op.Op.Name(cmd.op).lower(), cmd.path, resumed)
        try:
            result = await self._execute(cmd)
        except FileOpError as exc:
            result = worker_pb2.FileResult(error=str(exc))
        except OSError as exc:
            result = worker_pb2.FileResult(error=_describe(exc, cmd.path))
        result.request_id = cmd.request_id
        await self._send(worker_pb2.WorkerMessage(file_result=result))

    def _start_download(self, cmd: worker_pb2.FileCommand) -> None:
        """Open the temporary file; the download is answered when its last chunk arrives."""
        log.info("%s: download %s", cmd.builder_dir, cmd.path)
        try:
            path = resolve(self._basedir, cmd.builder_dir, cmd.path)
            if path.is_dir():
                raise FileOpError(f"{cmd.path} is a directory")
            self._downloads[cmd.request_id] = _Download(cmd, path)
        except FileOpError as exc:
            self._answer(worker_pb2.FileResult(request_id=cmd.request_id, error=str(exc)))
        except OSError as exc:
            self._answer(worker_pb2.FileResult(request_id=cmd.request_id, error=_describe(exc, cmd.path)))

    async def _execute(self, cmd: worker_pb2.FileCommand) -> worker_pb2.FileResult:
        path = resolve(self._basedir, cmd.builder_dir, cmd.path)
        if cmd.op == Op.MKDIR:
            path.mkdir(parents=True, exist_ok=True)
            return worker_pb2.FileResult()
        if cmd.op == Op.RMDIR:
            if path.is_dir() and not path.is_symlink():
                await asyncio.to_thread(shutil.rmtree, path)
            else:
                path.unlink(missing_ok=True)
            return worker_pb2.FileResult()
        if cmd.op == Op.STAT:
            try:
                st = path.stat()
            except FileNotFoundError:
                return worker_pb2.FileResult(exists=False)
            return worker_pb2.FileResult(exists=True, is_dir=path.is_dir(), size=st.st_size, mtime=st.st_mtime)
        if cmd.op == Op.GLOB:
            return worker_pb2.FileResult(paths=self._glob(cmd))
        if cmd.op == Op.UPLOAD:
            if path.is_dir():
                raise FileOpError(f"{cmd.path} is a directory, not a file")
            return await self._upload(cmd, path)
        if cmd.op == Op.UPLOAD_DIR:
            if not path.is_dir():
                raise FileOpError(f"no such directory: {cmd.path}")
            return await self._upload_dir(cmd, path)
        raise FileOpError(f"unknown file operation {cmd.op}")

    def _glob(self, cmd: worker_pb2.FileCommand) -> list[str]:
        if os.path.isabs(cmd.path):
            return sorted(glob.glob(cmd.path, recursive=True))
        root = os.path.join(self._basedir, cmd.builder_dir)
        return sorted(glob.glob(cmd.path, root_dir=root, recursive=True))

    async def _upload_dir(self, cmd: worker_pb2.FileCommand, path: Path) -> worker_pb2.FileResult:
        fd, tmp = tempfile.mkstemp(prefix=".gantry-upload-", suffix=".tar")
        os.close(fd)
        try:
            await asyncio.to_thread(_make_tar, path, Path(tmp), cmd.max_size)
            return await self._upload(cmd, Path(tmp))
        finally:
            os.unlink(tmp)

    async def _upload(self, cmd: worker_pb2.FileCommand, path: Path) -> worker_pb2.FileResult:
        rid = cmd.request_id
        window, cancelled = FlowWindow(self._window), asyncio.Event()
        self._uploads[rid] = (window, cancelled)
        digest = hashlib.sha256()
        size = seq = 0
        f = await asyncio.to_thread(path.open, "rb")
        try:
            with f:
                if cmd.offset:
                    # A resumed upload: the coordinator has the first `offset` bytes; the
                    # sha256 still covers the whole file, so they are read (not sent) again.
                    size = await asyncio.to_thread(_hash_prefix, f, cmd.offset, digest)
                    if size != cmd.offset:
                        raise FileOpError(f"{cmd.path} shrank to {size} bytes while being uploaded")
                while not cancelled.is_set():
                    data = await asyncio.to_thread(f.read, CHUNK_SIZE)
                    if not data:
                        break
                    size += len(data)
                    if cmd.max_size and size > cmd.max_size:
                        return worker_pb2.FileResult(
                            error=f"{cmd.path} is larger than maxsize ({cmd.max_size} bytes)",
                            too_large=True, last_seq=seq,
                        )
                    digest.update(data)
                    await window.wait_for_room()
                    if cancelled.is_set():
                        break
                    seq += 1
                    window.note_sent(seq)
                    chunk = worker_pb2.FileData(request_id=rid, seq=seq, data=data)
                    await self._send(worker_pb2.WorkerMessage(file_data=chunk))
            if cancelled.is_set():
                return worker_pb2.FileResult(error="cancelled by the coordinator", last_seq=seq)
            return worker_pb2.FileResult(size=size, sha256=digest.hexdigest(), last_seq=seq)
        finally:
            del self._uploads[rid]

    def _answer(self, result: worker_pb2.FileResult) -> None:
        self._post(worker_pb2.WorkerMessage(file_result=result))

    def _post(self, msg: worker_pb2.WorkerMessage) -> None:
        task = asyncio.ensure_future(self._send(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _hash_prefix(f: BinaryIO, length: int, digest: Any) -> int:
    """Feed the first `length` bytes of `f` to `digest`; how many there were."""
    done = 0
    while done < length:
        data = f.read(min(CHUNK_SIZE, length - done))
        if not data:
            break
        digest.update(data)
        done += len(data)
    return done


def _make_tar(source: Path, dest: Path, max_size: int) -> None:
    """Tar `source`'s contents (names relative to it); stop early past max_size."""
    with tarfile.open(dest, "w") as tar:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(root, name)
                tar.add(full, arcname=os.path.relpath(full, source), recursive=False)
                if max_size and tar.offset > max_size:
                    return  # the upload reports too_large
