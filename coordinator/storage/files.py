"""The coordinator's files on disk (the domain's ArtifactStore): build artifacts under
DATA/artifacts/<builder>/<number>/<name>, and the files FileUpload, DirectoryUpload and
FileDownload name (relative paths are under the data directory).

Every upload is written to a temporary file next to its target and renamed into place only once
complete and verified, so a failed or oversized transfer leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from coordinator.domain.workers.commands import TransferError

CHUNK_SIZE = 256 * 1024


class _FileSink:
    """Bytes into a temporary file; commit renames it to `target` (then `finish` runs)."""

    def __init__(self, target: Path, mode: int | None = None) -> None:
        self.target = target
        self.mode = mode
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = None

    def _open(self) -> tempfile._TemporaryFileWrapper[bytes]:
        if self._file is None:
            try:
                self.target.parent.mkdir(parents=True, exist_ok=True)
                self._file = tempfile.NamedTemporaryFile(
                    dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".part", delete=False
                )
            except OSError as exc:
                raise TransferError(f"cannot write {self.target}: {exc.strerror or exc}") from None
        return self._file

    async def write(self, data: bytes) -> None:
        # Local disk, one chunk at a time: fast enough to stay on the loop.
        self._open().write(data)

    async def commit(self) -> None:
        f = self._open()
        self._file = None
        await asyncio.to_thread(self._commit, f)

    def _commit(self, f: tempfile._TemporaryFileWrapper[bytes]) -> None:
        f.close()
        try:
            if self.mode is not None:
                os.chmod(f.name, self.mode)
            self.finish(Path(f.name))
        except OSError as exc:
            Path(f.name).unlink(missing_ok=True)
            raise TransferError(f"cannot write {self.target}: {exc.strerror or exc}") from None

    def finish(self, tmp: Path) -> None:
        os.replace(tmp, self.target)

    async def abort(self) -> None:
        if self._file is not None:
            f, self._file = self._file, None
            f.close()
            os.unlink(f.name)


class _DirectorySink(_FileSink):
    """A tar stream, extracted on commit into a fresh directory that then replaces `target`."""

    def finish(self, tmp: Path) -> None:
        staging = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}."))
        try:
            with tarfile.open(tmp) as tar:
                # The "data" filter refuses absolute paths, "..", links out of the tree, devices.
                tar.extractall(staging, filter="data")
            if self.target.is_dir():
                shutil.rmtree(self.target)
            os.replace(staging, self.target)
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise TransferError(f"cannot unpack the directory into {self.target}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)


class FileArtifactStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / "artifacts"

    # -- artifacts
    def artifact_path(self, builder: str, number: int, name: str) -> Path:
        for part in (builder, name):
            if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
                raise TransferError(f"{part!r} cannot be used as a file name")
        return self.root / builder / str(number) / name

    def artifact_sink(self, builder: str, number: int, name: str) -> _FileSink:
        return _FileSink(self.artifact_path(builder, number, name))

    def delete_artifact(self, builder: str, number: int, name: str) -> None:
        """Remove an artifact's file (retention), and its build's directory once empty."""
        path = self.artifact_path(builder, number, name)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty (other artifacts), or already gone
            path.parent.rmdir()

    async def read_artifact(self, builder: str, number: int, name: str) -> AsyncIterator[bytes]:
        async for chunk in _read(self.artifact_path(builder, number, name)):
            yield chunk

    def file_size_of_artifact(self, builder: str, number: int, name: str) -> int | None:
        try:
            return self.artifact_path(builder, number, name).stat().st_size
        except (OSError, TransferError):
            return None

    # -- the coordinator's own files
    def path(self, path: str) -> Path:
        return Path(path) if os.path.isabs(path) else self.data_dir / path

    def file_sink(self, path: str, mode: int | None) -> _FileSink:
        return _FileSink(self.path(path), mode)

    def directory_sink(self, path: str) -> _DirectorySink:
        return _DirectorySink(self.path(path))

    def file_size(self, path: str) -> int | None:
        p = self.path(path)
        return p.stat().st_size if p.is_file() and os.access(p, os.R_OK) else None

    async def read_file(self, path: str) -> AsyncIterator[bytes]:
        async for chunk in _read(self.path(path)):
            yield chunk


async def _read(path: Path) -> AsyncIterator[bytes]:
    try:
        f = await asyncio.to_thread(path.open, "rb")
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        while True:
            data = await asyncio.to_thread(f.read, CHUNK_SIZE)
            if not data:
                return
            yield data
    finally:
        f.close()
