"""The worker's file primitives on a real directory: every outcome is a FileResult (errors are
reported, never raised), transfers respect the window and carry a sha256."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from protos.gantry.v1 import worker_pb2
from worker_agent.files import CHUNK_SIZE, FileOps

Op = worker_pb2.FileCommand


class Peer:
    """The coordinator side: collects what the worker sends."""

    def __init__(self) -> None:
        self.sent: list[worker_pb2.WorkerMessage] = []
        self._changed = asyncio.Event()

    async def send(self, msg: worker_pb2.WorkerMessage) -> None:
        self.sent.append(msg)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def results(self) -> list[worker_pb2.FileResult]:
        return [m.file_result for m in self.sent if m.HasField("file_result")]

    def chunks(self) -> list[worker_pb2.FileData]:
        return [m.file_data for m in self.sent if m.HasField("file_data")]

    async def result(self) -> worker_pb2.FileResult:
        await self.until(lambda: bool(self.results()))
        [result] = self.results()
        return result


def cmd(op: int, path: str, **kw: object) -> worker_pb2.FileCommand:
    return worker_pb2.FileCommand(request_id="r1", op=op, builder_dir="b", path=path, **kw)  # type: ignore[arg-type]


async def run(tmp_path: Path, command: worker_pb2.FileCommand, window: int = 4) -> tuple[Peer, FileOps]:
    peer = Peer()
    ops = FileOps(tmp_path, peer.send, window)
    ops.command(command)
    return peer, ops


async def test_mkdir_stat_rmdir(tmp_path: Path) -> None:
    peer, ops = await run(tmp_path, cmd(Op.MKDIR, "build/a/b"))
    assert (await peer.result()).error == ""
    assert (tmp_path / "b" / "build" / "a" / "b").is_dir()

    (tmp_path / "b" / "build" / "a" / "f.txt").write_bytes(b"12345")
    peer, ops = await run(tmp_path, cmd(Op.STAT, "build/a/f.txt"))
    st = await peer.result()
    assert (st.exists, st.is_dir, st.size) == (True, False, 5) and st.mtime > 0
    peer, ops = await run(tmp_path, cmd(Op.STAT, "build/missing"))
    assert (await peer.result()).exists is False

    peer, ops = await run(tmp_path, cmd(Op.RMDIR, "build/a"))
    assert (await peer.result()).error == ""
    assert not (tmp_path / "b" / "build" / "a").exists()
    peer, ops = await run(tmp_path, cmd(Op.RMDIR, "build/a"))  # already gone: fine
    assert (await peer.result()).error == ""


async def test_errors_are_reported_not_raised(tmp_path: Path) -> None:
    peer, _ = await run(tmp_path, cmd(Op.UPLOAD, "build/nope.bin"))
    assert (await peer.result()).error == "no such file or directory: build/nope.bin"
    (tmp_path / "b" / "build").mkdir(parents=True)
    peer, _ = await run(tmp_path, cmd(Op.UPLOAD, "build"))
    assert (await peer.result()).error == "build is a directory, not a file"
    peer, _ = await run(tmp_path, cmd(Op.UPLOAD_DIR, "build/nodir"))
    assert (await peer.result()).error == "no such directory: build/nodir"
    (tmp_path / "b" / "build" / "file").write_text("x")
    peer, _ = await run(tmp_path, cmd(Op.MKDIR, "build/file/sub"))
    assert "build/file/sub" in (await peer.result()).error
    peer, _ = await run(tmp_path, cmd(Op.STAT, ""))
    assert (await peer.result()).error == "no path given"


async def test_upload_respects_the_window_and_reports_the_sha256(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 5 + 17)
    src = tmp_path / "b" / "build" / "out.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    peer, ops = await run(tmp_path, cmd(Op.UPLOAD, "build/out.bin"), window=2)
    await peer.until(lambda: len(peer.chunks()) == 2)
    await asyncio.sleep(0)  # give the sender a chance to overrun: it must not
    assert len(peer.chunks()) == 2 and peer.results() == []
    ops.ack(worker_pb2.FileAck(request_id="r1", seq=2))
    await peer.until(lambda: len(peer.chunks()) == 4)
    ops.ack(worker_pb2.FileAck(request_id="r1", seq=4))
    result = await peer.result()
    assert b"".join(c.data for c in peer.chunks()) == data
    assert [c.seq for c in peer.chunks()] == [1, 2, 3, 4, 5, 6]
    assert (result.error, result.size, result.last_seq) == ("", len(data), 6)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


async def test_upload_larger_than_max_size_stops(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"  # an absolute path, as Buildbot allows
    src.write_bytes(os.urandom(CHUNK_SIZE * 3))
    peer, _ = await run(tmp_path, cmd(Op.UPLOAD, str(src), max_size=CHUNK_SIZE + 1), window=8)
    result = await peer.result()
    assert result.too_large and "larger than maxsize" in result.error
    assert len(peer.chunks()) == 1


async def test_cancel_stops_an_upload_waiting_for_room(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(CHUNK_SIZE * 4))
    peer, ops = await run(tmp_path, cmd(Op.UPLOAD, str(src)), window=1)
    await peer.until(lambda: len(peer.chunks()) == 1)
    ops.cancel(worker_pb2.FileCancel(request_id="r1", reason="too large"))
    assert (await peer.result()).error == "cancelled by the coordinator"
    assert len(peer.chunks()) == 1


def _upload_tars() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob(".gantry-upload-*"))


async def test_upload_dir_sends_a_tar_of_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "b" / "build" / "dist"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("top")
    (root / "sub" / "b.txt").write_text("deep")
    before = _upload_tars()
    peer, ops = await run(tmp_path, cmd(Op.UPLOAD_DIR, "build/dist"), window=64)
    result = await peer.result()
    assert result.error == ""
    with tarfile.open(fileobj=io.BytesIO(b"".join(c.data for c in peer.chunks()))) as tar:
        assert sorted(tar.getnames()) == ["a.txt", "sub", "sub/b.txt"]
    assert _upload_tars() <= before  # the temporary tar is gone


async def test_glob(tmp_path: Path) -> None:
    reports = tmp_path / "b" / "build" / "reports"
    reports.mkdir(parents=True)
    for name in ("b.xml", "a.xml", "c.txt"):
        (reports / name).write_text("x")
    peer, _ = await run(tmp_path, cmd(Op.GLOB, "build/reports/*.xml"))
    assert list((await peer.result()).paths) == ["build/reports/a.xml", "build/reports/b.xml"]


async def test_download_writes_verifies_and_sets_the_mode(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 5)
    peer, ops = await run(tmp_path, cmd(Op.DOWNLOAD, "build/conf/x.bin", mode=0o640))
    ops.data(worker_pb2.FileData(request_id="r1", seq=1, data=data[:CHUNK_SIZE]))
    await peer.until(lambda: any(m.HasField("file_ack") for m in peer.sent))
    ops.data(worker_pb2.FileData(request_id="r1", seq=2, data=data[CHUNK_SIZE:]))
    target = tmp_path / "b" / "build" / "conf" / "x.bin"
    assert not target.exists()  # in place only once complete
    ops.data(worker_pb2.FileData(request_id="r1", seq=3, eof=True, sha256=hashlib.sha256(data).hexdigest()))
    result = await peer.result()
    assert (result.error, result.size) == ("", len(data))
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]


async def test_download_with_a_bad_checksum_leaves_nothing(tmp_path: Path) -> None:
    peer, ops = await run(tmp_path, cmd(Op.DOWNLOAD, "build/x.bin"))
    ops.data(worker_pb2.FileData(request_id="r1", seq=1, data=b"hello"))
    ops.data(worker_pb2.FileData(request_id="r1", seq=2, eof=True, sha256="0" * 64))
    result = await peer.result()
    assert result.error == "checksum mismatch: the file arrived damaged"
    assert list((tmp_path / "b" / "build").iterdir()) == []


async def test_download_into_an_impossible_place_is_reported(tmp_path: Path) -> None:
    (tmp_path / "b" / "build").mkdir(parents=True)
    (tmp_path / "b" / "build" / "file").write_text("x")
    peer, ops = await run(tmp_path, cmd(Op.DOWNLOAD, "build/file/x.bin"))
    assert "build/file/x.bin" in (await peer.result()).error
    ops.data(worker_pb2.FileData(request_id="r1", seq=1, data=b"late"))  # ignored, no crash
    peer2, _ = await run(tmp_path, cmd(Op.DOWNLOAD, "build"))
    assert (await peer2.result()).error == "build is a directory"
