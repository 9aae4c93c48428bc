"""CommandRunner without grpc: output fidelity, chunking, limits, kills, flow control."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from protos.gantry.v1 import worker_pb2
from tests.worker_agent.fakes import RecordingSink, wait_gone
from worker_agent.flow import FlowWindow
from worker_agent.runner import CHUNK_SIZE, HEADER, STDERR, STDOUT, CommandRunner

END_RE = re.compile(r"program finished with exit code (-?\d+)\nelapsedTime=\d+\.\d{6}\n$")


def make_runner(
    basedir: Path,
    sink: RecordingSink,
    window: int = 8,
    drain_timeout: float = 2.0,
    spool_limit: int = 64 * 1024 * 1024,
    **start,
) -> CommandRunner:
    start.setdefault("command_id", "c1")
    start.setdefault("builder_dir", "builder")
    runner = CommandRunner(
        worker_pb2.StartCommand(**start),
        basedir,
        sink,
        window=window,
        drain_timeout=drain_timeout,
        spool_limit=spool_limit,
    )
    sink.runner = runner
    return runner


async def run(
    basedir: Path, sink: RecordingSink | None = None, **start
) -> tuple[RecordingSink, worker_pb2.CommandFinished]:
    sink = sink or RecordingSink()
    runner = make_runner(basedir, sink, **start)
    async with asyncio.timeout(30):
        finished = await runner.run()
    return sink, finished


def check_stream(sink: RecordingSink) -> None:
    """Chunk invariants: seq 1..n, sizes within bounds, CommandFinished last and consistent."""
    chunks = sink.chunks
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert all(0 < len(c.data) <= CHUNK_SIZE for c in chunks)
    assert sink.messages[-1].HasField("finished")
    assert len(sink.finished) == 1
    assert sink.finished[0].last_seq == len(chunks)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_echo_headers_and_exit_code(tmp_path: Path) -> None:
    sink, finished = await run(tmp_path, argv=["sh", "-c", "echo hi; echo oops >&2"])
    check_stream(sink)
    assert (finished.rc, finished.reason) == (0, "")
    assert sink.data(STDOUT) == b"hi\n"
    assert sink.data(STDERR) == b"oops\n"
    workdir = tmp_path / "builder" / "build"
    assert workdir.is_dir()
    assert sink.chunks[0].channel == HEADER
    assert sink.chunks[0].data.decode() == f"sh -c 'echo hi; echo oops >&2'\n in dir {workdir}\n"
    assert sink.chunks[-1].channel == HEADER
    assert END_RE.search(sink.header())


async def test_exit_code_shell_command_env_and_workdir(tmp_path: Path) -> None:
    sink, finished = await run(
        tmp_path,
        shell_command='printf "%s|%s" "$GANTRY_T" "$(pwd)"; exit 3',
        workdir="sub/dir",
        env={"GANTRY_T": "value with spaces", "EMPTY": ""},
    )
    check_stream(sink)
    workdir = tmp_path / "builder" / "sub" / "dir"
    assert sink.data(STDOUT) == f"value with spaces|{workdir}".encode()
    assert (finished.rc, finished.reason) == (3, "")
    assert "program finished with exit code 3\n" in sink.header()


async def test_output_is_byte_exact_and_chunked(tmp_path: Path) -> None:
    # Interleaved stdout/stderr with every byte value, CR/LF/NUL and no trailing newline.
    script = (
        "import sys\n"
        "out = (bytes(range(256)) + b'\\r\\n\\x00') * 5000\n"
        "err = (b'\\xff\\xfe\\r\\n\\x00' + bytes(range(250))) * 400\n"
        "j = 0\n"
        "for i in range(0, len(out), 70000):\n"
        "    sys.stdout.buffer.write(out[i:i + 70000]); sys.stdout.buffer.flush()\n"
        "    sys.stderr.buffer.write(err[j:j + 3500]); sys.stderr.buffer.flush(); j += 3500\n"
        "sys.stderr.buffer.write(err[j:])\n"
    )
    expected_out = (bytes(range(256)) + b"\r\n\x00") * 5000
    expected_err = (b"\xff\xfe\r\n\x00" + bytes(range(250))) * 400
    sink, finished = await run(tmp_path, argv=[sys.executable, "-c", script])
    check_stream(sink)
    assert finished.rc == 0
    assert len(expected_out) > 1024 * 1024
    assert sink.data(STDOUT) == expected_out
    assert sink.data(STDERR) == expected_err
    stdout_chunks = [c for c in sink.chunks if c.channel == STDOUT]
    # Bulk output travels in large messages, not one per pipe read.
    assert len(expected_out) / len(stdout_chunks) > 8 * 1024


async def test_quiet_output_is_sent_promptly(tmp_path: Path) -> None:
    # The command writes "a", then waits until the test has received it (the runner must send
    # it without waiting for more output) before writing "b": two separate chunks.
    go = tmp_path / "go"
    sink = RecordingSink()
    runner = make_runner(
        tmp_path, sink, shell_command=f"printf a; while [ ! -e '{go}' ]; do sleep 0.01; done; printf b"
    )
    task = asyncio.create_task(runner.run())
    await sink.wait_for(lambda: sink.data(STDOUT) == b"a")
    go.touch()
    async with asyncio.timeout(30):
        await task
    assert [c.data for c in sink.chunks if c.channel == STDOUT] == [b"a", b"b"]


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    # The silence starts once the grandchild's pid is out. The runner's clock starts before the
    # shell does, so the timeout leaves ample room for a slow start on a loaded machine.
    sink, finished = await run(
        tmp_path, shell_command="sleep 100 & echo $!; sleep 100", timeout=2
    )
    check_stream(sink)
    assert (finished.rc, finished.reason) == (-1, "timeout")
    assert sink.data(STDOUT), "killed before the shell started its grandchild: no group to check"
    grandchild = int(sink.data(STDOUT))
    await wait_gone(grandchild)
    header = sink.header()
    assert "command timed out: 2 seconds without output, attempting to kill\n" in header
    assert re.search(r"process killed by signal 9\nelapsedTime=\d+\.\d{6}\n$", header)


async def test_max_time(tmp_path: Path) -> None:
    # A command that keeps writing is killed at max_time all the same. Its clock starts before
    # the shell does: max_time leaves room for a slow start, so the output is there to check.
    sink, finished = await run(
        tmp_path, shell_command="while true; do echo x; sleep 0.05; done", max_time=1.5, timeout=30
    )
    check_stream(sink)
    assert (finished.rc, finished.reason) == (-1, "max_time")
    assert "command timed out: 1.5 seconds elapsed, attempting to kill\n" in sink.header()
    elapsed = float(re.findall(r"elapsedTime=(\d+\.\d+)", sink.header())[-1])
    assert elapsed >= 1.5
    out = sink.data(STDOUT)
    assert out.startswith(b"x\n") and out.replace(b"x\n", b"") in (b"", b"x")


async def test_interrupt(tmp_path: Path) -> None:
    sink = RecordingSink()
    runner = make_runner(tmp_path, sink, shell_command="echo started; sleep 100")
    task = asyncio.create_task(runner.run())
    await sink.wait_for(lambda: sink.data(STDOUT) == b"started\n")
    pid = runner.pid
    assert pid is not None
    runner.interrupt("stopped by jane")
    async with asyncio.timeout(10):
        finished = await task
    check_stream(sink)
    assert (finished.rc, finished.reason) == (-1, "interrupted")
    assert "interrupted: stopped by jane\n" in sink.header()
    assert "process killed by signal 9\n" in sink.header()
    await wait_gone(pid)


async def test_failed_to_start(tmp_path: Path) -> None:
    sink, finished = await run(tmp_path, argv=["/nonexistent/gantry-program", "x"])
    check_stream(sink)
    assert finished.rc == -1
    assert finished.reason.startswith("failed to start: ")
    assert "/nonexistent/gantry-program" in finished.reason
    assert finished.reason + "\n" in sink.header()


@pytest.mark.parametrize(
    "start",
    [
        {"argv": []},
        {"argv": ["true"], "builder_dir": "../outside"},
        {"argv": ["true"], "workdir": "/etc"},
    ],
)
async def test_refuses_bad_commands(tmp_path: Path, start: dict[str, Any]) -> None:
    sink, finished = await run(tmp_path / "base", **start)
    check_stream(sink)
    assert finished.rc == -1
    assert finished.reason.startswith("failed to start: ")
    assert not (tmp_path / "outside").exists()


async def test_flow_control_window_blocks_the_command(tmp_path: Path) -> None:
    size = 4 * 1024 * 1024
    sink = RecordingSink(auto_ack=False)
    runner = make_runner(
        tmp_path,
        sink,
        window=2,
        spool_limit=4 * CHUNK_SIZE,  # the spool holds what the window does not: bound it too
        argv=[sys.executable, "-c", f"import sys; sys.stdout.buffer.write(b'z' * {size})"],
    )
    task = asyncio.create_task(runner.run())
    await sink.wait_for(lambda: len(sink.chunks) >= 2)
    # Without an ack nothing more is sent; the spool fills and the child is stuck writing
    # to its pipe.
    with pytest.raises(TimeoutError):
        await sink.wait_for(lambda: len(sink.chunks) > 2, timeout=0.5)
    assert len(sink.chunks) == 2
    pid = runner.pid
    assert pid is not None and not gone(pid)
    assert not task.done()

    sink.ack(1)  # one slot opens: exactly one more chunk
    await sink.wait_for(lambda: len(sink.chunks) >= 3)
    with pytest.raises(TimeoutError):
        await sink.wait_for(lambda: len(sink.chunks) > 3, timeout=0.2)

    sink.auto_ack = True
    sink.ack(3)
    async with asyncio.timeout(30):
        finished = await task
    check_stream(sink)
    assert finished.rc == 0
    assert sink.data(STDOUT) == b"z" * size
    assert sink.max_in_flight <= 2


async def test_cancelling_the_run_kills_the_process_group(tmp_path: Path) -> None:
    sink = RecordingSink()
    runner = make_runner(tmp_path, sink, shell_command="sleep 100 & echo $!; sleep 100")
    task = asyncio.create_task(runner.run())
    await sink.wait_for(lambda: sink.data(STDOUT).endswith(b"\n"))
    grandchild = int(sink.data(STDOUT))
    pid = runner.pid
    assert pid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await task
    await wait_gone(pid)
    await wait_gone(grandchild)


async def test_escaped_grandchild_holding_the_pipe_does_not_hang_the_command(
    tmp_path: Path,
) -> None:
    # setsid puts the grandchild outside the command's process group; it keeps stdout open.
    sink = RecordingSink()
    runner = make_runner(
        tmp_path,
        sink,
        drain_timeout=0.3,
        argv=[sys.executable, "-c", ESCAPE_SCRIPT],
    )
    try:
        async with asyncio.timeout(20):
            finished = await runner.run()
        check_stream(sink)
        assert finished.rc == 0
        assert sink.data(STDOUT).startswith(b"escaped ")
    finally:
        pid = int(sink.data(STDOUT).split()[1])
        os.kill(pid, signal.SIGKILL)


ESCAPE_SCRIPT = """
import os, subprocess, sys
p = subprocess.Popen(["sleep", "100"], start_new_session=True)
sys.stdout.write(f"escaped {p.pid}\\n")
"""


async def test_flow_window_clamps_acks() -> None:
    window = FlowWindow(2)
    window.note_sent(2)
    assert window.is_full()
    window.ack(10)  # cannot ack what was never sent
    assert window.in_flight == 0
    window.note_sent(4)
    assert window.is_full()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await window.wait_for_room()
    window.ack(3)
    async with asyncio.timeout(1):
        await window.wait_for_room()


async def test_output_carries_the_times_it_was_read_at(tmp_path: Path) -> None:
    """Every chunk has time marks from offset 0; a line printed after a pause (which ends only
    once the first line reached the coordinator) has a later time than the first."""
    go_on = tmp_path / "go-on"
    sink = RecordingSink()
    runner = make_runner(
        tmp_path, sink, shell_command=f"echo one; while [ ! -e {go_on} ]; do sleep 0.01; done; echo two"
    )
    task = asyncio.ensure_future(runner.run())
    await sink.wait_for(lambda: b"one" in sink.data(STDOUT))
    go_on.touch()
    async with asyncio.timeout(30):
        await task
    assert all(len(c.time_marks) >= 2 and c.time_marks[0] == 0 for c in sink.chunks)
    one = next(c for c in sink.chunks if c.channel == STDOUT and b"one" in c.data)
    two = next(c for c in sink.chunks if c.channel == STDOUT and b"two" in c.data)
    assert two.time_marks[1] > one.time_marks[-1]  # flattened (offset, ms) pairs
    times = [c.time_marks[-1] for c in sink.chunks]
    assert times == sorted(times)
