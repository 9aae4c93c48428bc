"""`python -m bench.retention [--builds N]`: the janitor on an SQLite database of N finished
builds (each a step, a 1 KiB log chunk and an artifact row), with a writer looping small writes
meanwhile: how long the dry run and the sweep take, and how long the other writes wait."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from coordinator.domain.builds.retention import Janitor, Retention
from coordinator.domain.events import Event
from coordinator.domain.results import Result
from coordinator.storage import schema
from coordinator.storage.sql import database_url, open_storage

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: object) -> object:
        raise NotImplementedError


def fill(conn: sa.Connection, n: int) -> None:
    chunk = os.urandom(1024)
    conn.execute(
        schema.buildsets.insert().values(
            id=1,
            reason="r",
            scheduler="s",
            submitted_at=T0,
            sourcestamps_json="[]",
            properties_json="[]",
            change_ids_json="[]",
            complete=False,
        )
    )
    conn.execute(schema.buildrequests.insert().values(id=1, buildset_id=1, builder="b", submitted_at=T0))
    conn.execute(
        schema.builds.insert(),
        [
            dict(
                id=i,
                builder="b",
                number=i,
                worker="w",
                buildrequest_id=1,
                buildset_id=1,
                started_at=T0 + i - 1,
                finished_at=T0 + i,
                result=int(Result.FAILURE if i % 10 == 0 else Result.SUCCESS),
            )
            for i in range(1, n + 1)
        ],
    )
    conn.execute(schema.steps.insert(), [dict(id=i, build_id=i, number=0, name="s") for i in range(1, n + 1)])
    conn.execute(
        schema.logs.insert(),
        [dict(id=i, step_id=i, name="stdio", type="s", size=len(chunk), complete=True) for i in range(1, n + 1)],
    )
    conn.execute(
        schema.logchunks.insert(),
        [
            dict(log_id=i, seq=1, channel=1, offset=0, channel_offset=0, length=len(chunk), compressed=0, data=chunk)
            for i in range(1, n + 1)
        ],
    )
    conn.execute(
        schema.artifacts.insert(),
        [
            dict(build_id=i, step_id=i, name="out.tar", size=1, sha256="0" * 64, created_at=T0 + i)
            for i in range(1, n + 1)
        ],
    )


async def measure(n: int) -> None:
    def published(_: list[Event]) -> None:
        pass

    data_dir = Path(tempfile.mkdtemp(prefix="gantry-bench-retention-"))
    db = await open_storage(database_url(None, data_dir), published)
    async with db.engine.begin() as conn:
        await conn.run_sync(fill, n)
    file = data_dir / "gantry.sqlite"
    size_before = file.stat().st_size
    rules = [
        Retention(
            logHorizon=0.4 * n,
            buildHorizon=0.6 * n,
            failedBuildHorizon=0.9 * n,
            artifactHorizon=0.5 * n,
            failedArtifactHorizon=0.9 * n,
        )
    ]
    janitor = Janitor(db.retention, Clock(T0 + n), lambda: rules, lambda: ["b"])  # type: ignore[arg-type]
    started = time.perf_counter()
    await janitor.sweep(dry_run=True)
    dry = time.perf_counter() - started

    waits: list[float] = []
    done = asyncio.Event()

    async def writer() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await db.workers.set_worker_hold("w", None, [])
            waits.append(time.perf_counter() - t)

    task = asyncio.create_task(writer())
    started = time.perf_counter()
    report = await janitor.sweep()
    sweep = time.perf_counter() - started
    done.set()
    await task
    await db.aclose()
    waits.sort()
    deleted = {kind: report.total(kind) for kind in ("logs", "artifacts", "builds")}
    print(
        f"{n} builds: dry run {dry * 1000:.0f} ms; sweep {sweep:.2f} s in {report.batches} batches, "
        f"deleted {deleted}; {report.reclaimed}"
    )
    print(f"database file {size_before / 1e6:.1f} MB -> {file.stat().st_size / 1e6:.1f} MB (before a WAL checkpoint)")
    print(
        f"small writes during the sweep: {len(waits)}, median wait {waits[len(waits) // 2] * 1000:.1f} ms, "
        f"max {waits[-1] * 1000:.0f} ms"
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    p.add_argument("--builds", type=int, default=10_000)
    asyncio.run(measure(p.parse_args().builds))


if __name__ == "__main__":
    main()
