"""The coordinator's file store: artifacts and masterdest files land whole or not at all."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from coordinator.domain.workers.commands import TransferError
from coordinator.storage.files import FileArtifactStore


async def test_artifact_is_in_place_only_after_commit(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    sink = store.artifact_sink("b", 3, "out.bin")
    await sink.write(b"hello ")
    await sink.write(b"world")
    target = tmp_path / "artifacts" / "b" / "3" / "out.bin"
    assert not target.exists()
    await sink.commit()
    assert target.read_bytes() == b"hello world"
    assert store.file_size_of_artifact("b", 3, "out.bin") == 11
    assert b"".join([c async for c in store.read_artifact("b", 3, "out.bin")]) == b"hello world"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


async def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    sink = store.artifact_sink("b", 3, "out.bin")
    await sink.write(b"partial")
    await sink.abort()
    assert list((tmp_path / "artifacts" / "b" / "3").iterdir()) == []
    assert store.file_size_of_artifact("b", 3, "out.bin") is None


@pytest.mark.parametrize("name", ["", "..", "a/b", "."])
def test_artifact_names_cannot_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(TransferError):
        FileArtifactStore(tmp_path).artifact_sink("b", 1, name)


async def test_file_sink_mode_and_relative_paths(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    sink = store.file_sink("out/x.txt", 0o600)
    await sink.write(b"x")
    await sink.commit()
    assert (tmp_path / "out" / "x.txt").stat().st_mode & 0o777 == 0o600
    assert store.file_size("out/x.txt") == 1 and store.file_size("out/none") is None


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def test_directory_sink_replaces_the_directory(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "old.html").write_text("old")
    sink = store.directory_sink("site")
    await sink.write(_tar({"index.html": b"new", "css/a.css": b"body{}"}))
    await sink.commit()
    assert sorted(str(p.relative_to(tmp_path / "site")) for p in (tmp_path / "site").rglob("*")) == [
        "css", "css/a.css", "index.html"
    ]


async def test_directory_sink_refuses_paths_out_of_the_tree(tmp_path: Path) -> None:
    store = FileArtifactStore(tmp_path / "data")
    sink = store.directory_sink("site")
    await sink.write(_tar({"../../evil.txt": b"x"}))
    with pytest.raises(TransferError, match="cannot unpack"):
        await sink.commit()
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "data" / "site").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == []


async def test_reading_a_missing_file_is_a_transfer_error(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match="cannot read"):
        [c async for c in FileArtifactStore(tmp_path).read_file("nope.bin")]
