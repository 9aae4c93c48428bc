"""File transfers end to end on a real coordinator and worker: FileUpload to artifacts (listed
and downloaded through the CLI), maxsize, FileDownload, DirectoryUpload, and the JUnit Test step."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest

from tests.e2e.harness import (
    CANCELLED,
    FAILURE,
    RETRY,
    SUCCESS,
    TIMEOUT,
    Cluster,
    describe_events,
    run_cli,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

JUNIT = """<?xml version="1.0"?>
<testsuites>
  <testsuite name="unit" tests="4">
    <testcase classname="pkg.test_math" name="test_add"/>
    <testcase classname="pkg.test_math" name="test_div"><failure message="ZeroDivisionError">trace</failure></testcase>
    <testcase classname="pkg.test_io" name="test_slow"><skipped/></testcase>
    <testcase classname="pkg.test_io" name="test_read"/>
  </testsuite>
</testsuites>
"""

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("upload", workers=["w1"], steps=[
            ShellCommand(name="make", command="head -c 3145728 /dev/urandom > out.bin && mkdir -p dist/sub "
                         "&& echo top > dist/a.txt && echo deep > dist/sub/b.txt"),
            FileUpload(name="up", workersrc="out.bin", url="https://files.example.org/out.bin"),
            FileUpload(name="copy", workersrc="out.bin", masterdest="copies/out.bin", mode=0o640),
            DirectoryUpload(name="dir", workersrc="dist"),
            DirectoryUpload(name="dir-copy", workersrc="dist", masterdest="copies/dist"),
        ]),
        Builder("toolarge", workers=["w1"], steps=[
            ShellCommand(name="make", command="head -c 1048576 /dev/urandom > big.bin"),
            FileUpload(name="up", workersrc="big.bin", maxsize=100000),
            FileUpload(name="missing", workersrc="nope.bin", alwaysRun=True),
        ]),
        Builder("download", workers=["w1"], steps=[
            FileDownload(name="get", mastersrc="inputs/config.txt", workerdest="conf/config.txt", mode=0o600),
            ShellCommand(name="check", command="test \\"$(cat conf/config.txt)\\" = 'from the coordinator' "
                         "&& test \\"$(stat -c %a conf/config.txt)\\" = 600"),
            FileDownload(name="absent", mastersrc="inputs/absent.txt", workerdest="x.txt", alwaysRun=True),
        ]),
        Builder("tests", workers=["w1"], steps=[
            Test(command="mkdir -p reports && cat > reports/unit.xml <<'EOF'\\n" + JUNIT + "EOF\\n",
                 junit="reports/*.xml"),
            Test(name="no-report", command="true", junit="reports/none.xml", alwaysRun=True),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["upload", "toolarge", "download", "tests"])],
)
""".replace("JUNIT", repr(JUNIT))


async def _forced_build(coord, builder: str):  # type: ignore[no-untyped-def]
    rec = await coord.record()
    forced = await coord.force(builder)
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    [finished] = rec.of_kind("build.finished", buildset_id=forced.buildset_id)
    await rec.aclose()
    return done, await coord.get_build(builder, finished.build_number), rec


async def test_file_upload_to_artifact_and_download(cluster: Cluster, tmp_path: Path, db: str | None) -> None:
    coord = await cluster.start_coordinator(CONFIG, db=db)
    worker = await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "upload")
    assert done.result == SUCCESS, describe_events(rec.events) + cluster.logs()
    original = (worker.basedir / "upload" / "build" / "out.bin").read_bytes()
    assert len(original) == 3 * 1024 * 1024
    assert {a.name: a.size for a in build.artifacts}["out.bin"] == len(original)
    assert [(u.name, u.url) for u in build.steps[1].urls] == [("out.bin", "https://files.example.org/out.bin")]

    code, out, err = await run_cli("artifacts", "upload", str(build.number), "--json",
                                   "--coordinator", coord.address)
    assert code == 0, err
    listed = {a["name"]: a for a in json.loads(out)["artifacts"]}
    assert listed["out.bin"]["sha256"] == hashlib.sha256(original).hexdigest()
    assert listed["out.bin"]["step"] == "up"
    assert set(listed) == {"out.bin", "dist.tar"}

    code, out, err = await run_cli("build", "upload", str(build.number), "--coordinator", coord.address)
    assert code == 0 and b"Artifacts" in out and b"dist.tar" in out, err

    target = tmp_path / "got.bin"
    code, out, err = await run_cli("download", "upload", str(build.number), "out.bin", "-o", str(target),
                                   "--coordinator", coord.address)
    assert code == 0, err
    assert target.read_bytes() == original
    assert hashlib.sha256(original).hexdigest().encode() in out

    # A missing artifact is a clear error, and nothing is written.
    code, out, err = await run_cli("download", "upload", str(build.number), "nope.bin", "-o",
                                   str(tmp_path / "nope"), "--coordinator", coord.address)
    assert code == 1 and b"has no artifact 'nope.bin'" in err, err
    assert not (tmp_path / "nope").exists()

    # With masterdest: under the coordinator's data dir, not an artifact.
    assert (coord.data_dir / "copies" / "out.bin").read_bytes() == original
    assert (coord.data_dir / "copies" / "out.bin").stat().st_mode & 0o777 == 0o640
    copy = coord.data_dir / "copies" / "dist"
    assert (copy / "a.txt").read_text() == "top\n"
    assert (copy / "sub" / "b.txt").read_text() == "deep\n"


async def test_maxsize_exceeded_fails_and_keeps_nothing(cluster: Cluster, db: str | None) -> None:
    coord = await cluster.start_coordinator(CONFIG, db=db)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "toolarge")
    assert done.result == FAILURE, describe_events(rec.events)
    steps = {s.name: s for s in build.steps}
    assert steps["up"].result == FAILURE
    assert "larger than maxsize (100000 bytes)" in steps["up"].state_string
    assert steps["missing"].result == FAILURE
    assert "no such file or directory" in steps["missing"].state_string
    assert list(build.artifacts) == []
    art_dir = coord.data_dir / "artifacts" / "toolarge" / str(build.number)
    assert not art_dir.exists() or list(art_dir.iterdir()) == []
    code, out, err = await run_cli("artifacts", "toolarge", str(build.number), "--coordinator", coord.address)
    assert code == 0 and b"has no artifacts" in out, err
    code, out, err = await run_cli("artifacts", "toolarge", "99", "--coordinator", coord.address)
    assert code == 1 and b"no build number 99" in err, err


async def test_file_download_puts_a_coordinator_file_on_the_worker(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    (coord.data_dir / "inputs").mkdir()
    (coord.data_dir / "inputs" / "config.txt").write_text("from the coordinator\n")

    done, build, rec = await _forced_build(coord, "download")
    assert done.result == FAILURE, describe_events(rec.events)
    assert [(s.name, s.result) for s in build.steps] == [("get", SUCCESS), ("check", SUCCESS), ("absent", FAILURE)]
    assert "no such file on the coordinator: inputs/absent.txt" in build.steps[2].state_string


async def test_directory_upload_artifact_round_trip(cluster: Cluster, tmp_path: Path) -> None:
    import tarfile

    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    done, build, rec = await _forced_build(coord, "upload")
    assert done.result == SUCCESS, describe_events(rec.events)

    target = tmp_path / "dist.tar"
    code, _, err = await run_cli("download", "upload", str(build.number), "dist.tar", "-o", str(tmp_path),
                                 "--coordinator", coord.address)
    assert code == 0, err
    with tarfile.open(target) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert (tmp_path / "x" / "a.txt").read_text() == "top\n"
    assert (tmp_path / "x" / "sub" / "b.txt").read_text() == "deep\n"


async def test_junit_test_step(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")

    done, build, rec = await _forced_build(coord, "tests")
    assert done.result == FAILURE, describe_events(rec.events)
    test, no_report = build.steps
    assert test.result == FAILURE  # the command exited 0, but a test failed
    assert test.state_string == "4 tests, 1 failed, 1 skipped (failure)"
    props = {p.name: json.loads(p.value_json) for p in build.properties}
    assert (props["tests-total"], props["tests-passed"], props["tests-failed"], props["tests-skipped"]) == (4, 2, 1, 1)
    summary = await coord.read_log("tests", build.number, "test", log="tests")
    assert b"FAILED pkg.test_math.test_div: ZeroDivisionError" in summary
    assert no_report.result == FAILURE
    assert "no such file or directory" in no_report.state_string

    code, out, err = await run_cli("build", "tests", str(build.number), "--coordinator", coord.address)
    assert code == 0, err
    assert b"4 tests, 1 failed, 1 skipped" in out
    code, out, err = await run_cli("log", "tests", str(build.number), "test", "--log", "tests",
                                   "--coordinator", coord.address)
    assert code == 0 and b"FAILED pkg.test_math.test_div: ZeroDivisionError" in out, err
    code, out, err = await run_cli("build", "tests", str(build.number), "--json", "--coordinator", coord.address)
    assert code == 0, err
    shown = json.loads(out)
    shown_props = {p["name"]: p["value"] for p in shown["properties"]}
    assert shown_props["tests-failed"] == 1 and shown_props["tests-total"] == 4


BLOCKED = """
config = MasterConfig(
    # A worker lost mid-transfer is waited for 2 s (then the build ends RETRY); one back within
    # that time goes on with the transfer (test_transfer_faults.py).
    workers=[Worker("w1", "secret1", missing_timeout=2)],
    builders=[
        # Opening a FIFO blocks until a writer comes: the upload is reliably in progress.
        Builder("blocked", workers=["w1"], steps=[
            ShellCommand(name="fifo", command="rm -f pipe && mkfifo pipe"),
            FileUpload(name="up", workersrc="pipe"),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["blocked"])],
)
"""


async def _blocked_upload(cluster: Cluster):  # type: ignore[no-untyped-def]
    coord = await cluster.start_coordinator(BLOCKED)
    worker = await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record()
    forced = await coord.force("blocked")
    await worker.process.wait_line(r"blocked: upload build/pipe", TIMEOUT)
    return coord, worker, rec, forced


async def test_worker_lost_mid_transfer_and_not_back_ends_the_build_retry(cluster: Cluster) -> None:
    coord, worker, rec, forced = await _blocked_upload(cluster)
    worker.process.send(signal.SIGKILL)
    finished = await rec.wait_kind("build.finished", builder="blocked")
    assert finished.result == RETRY, describe_events(rec.events)
    await rec.wait_kind("buildrequest.retried")
    build = await coord.get_build("blocked", finished.build_number)
    assert build.steps[1].result == RETRY and list(build.artifacts) == []


async def test_stopping_a_build_cancels_its_transfer(cluster: Cluster) -> None:
    coord, worker, rec, forced = await _blocked_upload(cluster)
    code, _, err = await run_cli("stop", "blocked", "1", "--reason", "enough", "--coordinator", coord.address)
    assert code == 0, err
    finished = await rec.wait_kind("build.finished", builder="blocked")
    assert finished.result == CANCELLED, describe_events(rec.events)
    build = await coord.get_build("blocked", finished.build_number)
    assert build.steps[1].result == CANCELLED
    await worker.process.wait_line(r"transfer \S+ cancelled: enough", TIMEOUT)
    # Release the worker's thread still waiting to open the FIFO (so the worker stops quickly).
    os.close(os.open(worker.basedir / "blocked" / "build" / "pipe", os.O_WRONLY | os.O_NONBLOCK))
