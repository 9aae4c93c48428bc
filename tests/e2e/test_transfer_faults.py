"""File transfers that survive a cut worker link (issue 9): a 24 MiB FileUpload and then a
FileDownload of it, each cut off in its middle by iptables DROP both ways for 5 s inside the
worker's network namespace (the link is slowed with tbf so that the middle lasts). The build
succeeds and runs once, both files are byte-exact, the upload went on from the bytes the
coordinator had stored (the agent logs "from byte N"), the download started over once, and the
upload step showed that it waited for its worker.
Where the worker cannot have its own namespace, the test skips and says why.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import SUCCESS, Cluster, describe_events, poll
from tests.e2e.test_netfaults import own_netns
from tests.e2e.test_reattach import start, states

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SIZE = 24 * 1024 * 1024
CONFIG = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="make", command="head -c {SIZE} /dev/urandom > big.bin"),
        FileUpload(name="up", workersrc="big.bin", masterdest="copies/big.bin"),
        FileDownload(name="down", mastersrc="copies/big.bin", workerdest="back.bin"),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


def _partial(directory: Path, name: str) -> Callable[[], int]:
    """Bytes of the largest temporary file a transfer into `directory/name` is writing."""

    def size() -> int:
        sizes = [p.stat().st_size for p in directory.glob(f".{name}.*.part") if p.is_file()]
        return max(sizes, default=0)

    return size


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_an_upload_and_a_download_cut_mid_way_resume_byte_exact(cluster: Cluster) -> None:
    async with own_netns(cut_with="iptables") as link:
        coord, worker = await start(cluster, link, CONFIG)
        # ~3 MB/s: each direction takes seconds, so a cut lands in its middle.
        await link.shape(rate="24mbit", burst="64kb", latency="50ms")
        rec = await coord.record(since=0)
        await coord.force("b")
        build_dir = worker.basedir / "b" / "build"

        async def cut_when(progress: Callable[[], int], what: str) -> None:
            async def midway() -> bool:
                return SIZE // 8 < progress() < SIZE // 2

            await poll(midway, what=what)
            await link.cut()
            try:
                await asyncio.sleep(5)  # the fault itself: five seconds of DROP both ways
            finally:
                await link.restore()

        await cut_when(_partial(coord.data_dir / "copies", "big.bin"), "the upload is a quarter through")
        await rec.wait_kind("step.started", builder="b", step_name="down")
        await cut_when(_partial(build_dir, "back.bin"), "the download is a quarter through")
        finished = await rec.wait_kind("build.finished", builder="b")

        # Checked with the namespace up: the coordinator listens on its veth.
        assert finished.result == SUCCESS, describe_events(rec.events)
        assert [b.number for b in await coord.list_builds("b")] == [finished.build_number]  # no re-run
        original = _sha(build_dir / "big.bin")
        assert _sha(coord.data_dir / "copies" / "big.bin") == original
        assert _sha(build_dir / "back.bin") == original
        output = worker.process.output()
        assert "upload build/big.bin from byte " in output, output  # resumed, not started over
        assert output.count("download build/back.bin") == 2, output  # started over once
        # The coordinator noticed the silence before the worker was back (after the first cut; the
        # second one's worker may come back before it is noticed, then nothing is shown).
        texts = states(rec.of_kind("step.state", builder="b", build_number=finished.build_number, step_name="up"))
        assert "worker disconnected, waiting up to 300 s" in texts, texts
