"""`python -m bench.journal [--commands N]`: what the step command journal costs, on SQLite.

A build with one ShellSequence of N commands (each 3 output chunks) runs in-process against a
fake worker session (no network: what is measured is the coordinator's own work and its
database writes):
- run: the step with the journal and without it (time per command, journal writes);
- replay: the coordinator "killed" while the last command runs, the build resumed in a new
  runner — time until the step has replayed its N-1 journaled commands and adopted the last.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.events import Event
from coordinator.domain.model import Build, BuildRequest, JournalEntry, NewBuildset
from coordinator.domain.ports import JournalStore
from coordinator.domain.results import Result
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.steps.shell import ShellArg, ShellSequence
from coordinator.domain.workers.commands import HEADER, STDOUT, CommandSpec, Finished, KeptCommand
from coordinator.storage.sql import SqlStorage, database_url, open_storage

OutputHandler = Callable[[int, bytes], Awaitable[None]]
ROUNDS = 4


class Clock:
    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


class Session:
    """A worker that runs each command at once (3 chunks), except `hang` (never ends)."""

    missing_timeout = 0.0
    name = "w"

    def __init__(self, hang: str = "", kept: Sequence[KeptCommand] = ()) -> None:
        self.hang = hang
        self.kept = list(kept)
        self.hanging = asyncio.Event()
        self.ids: dict[str, str] = {}

    async def run_command(self, spec: CommandSpec, on_output: OutputHandler, on_wait: object = None) -> Finished:
        text = spec.shell_command
        self.ids[text] = spec.command_id
        await on_output(HEADER, f"$ {text}\n".encode())
        await on_output(STDOUT, f"{text} out\n".encode())
        if text == self.hang:
            self.hanging.set()
            await asyncio.Event().wait()
        await on_output(STDOUT, f"{text} done\n".encode())
        return Finished(spec.command_id, 0)

    def expect(self, prefix: str) -> asyncio.Future[list[KeptCommand]]:
        fut: asyncio.Future[list[KeptCommand]] = asyncio.get_running_loop().create_future()
        fut.set_result([k for k in self.kept if k.command_id.startswith(prefix)])
        return fut

    async def wait_attached(self, on_wait: object) -> None:
        pass

    async def adopt_command(self, kept: KeptCommand, stored_seq: int, on_output: OutputHandler, on_wait: object,
                            missing_timeout: float, interrupted: str = "") -> Finished:
        self.hanging.set()
        await on_output(STDOUT, b"last done\n")
        return Finished(kept.command_id, 0)

    def forget(self, command_id: str, reason: str) -> None:
        pass

    def release(self, command_ids: Sequence[str]) -> None:
        pass

    def interrupt(self, command_id: str, reason: str) -> None:
        pass


class CountingJournal:
    def __init__(self, store: JournalStore) -> None:
        self.store = store
        self.writes = 0

    async def record_journal(self, entries: Sequence[JournalEntry]) -> None:
        self.writes += 1
        await self.store.record_journal(entries)

    async def step_journal(self, build_id: int, step_number: int) -> list[JournalEntry]:
        return await self.store.step_journal(build_id, step_number)


def steps(n: int) -> list[ShellSequence]:
    return [ShellSequence(name="seq", commands=[ShellArg(f"cmd{i}") for i in range(n)])]


async def new_build(db: SqlStorage, builder: str) -> Build:
    def events(bs_id: int, requests: list[BuildRequest]) -> list[Event]:
        return []

    bs_id, reqs = await db.buildsets.add_buildset(NewBuildset("bench", "bench", [builder], [], []), 0.0, None, events)
    req = BuildRequest(id=reqs[builder], buildset_id=bs_id, builder=builder, priority=0, submitted_at=0.0)
    return await db.builds.start_build(req, "w", [], 0.0, ["seq"], lambda b: [])


def runner(db: SqlStorage, build: Build, n: int, session: Session, journal: JournalStore | None,
           resuming: bool = False) -> BuildRunner:
    services = BuildServices(db.builds, db.logs, LogWatchers(), Clock(), log_reads=db.logs, journal=journal)
    return BuildRunner(build, steps(n), "b", session, services, resuming=resuming)  # type: ignore[arg-type]


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = await open_storage(database_url(None, Path(tmp)), lambda events: None)
        try:
            # Interleaved rounds, the median of each: the machine's noise hits both alike.
            took: dict[str, list[float]] = {"without journal": [], "with journal": []}
            writes = 0
            for r in range(ROUNDS):
                for label in (list(took) if r % 2 == 0 else list(reversed(took))):  # each goes first too
                    journal = CountingJournal(db.journal) if label == "with journal" else None
                    build = await new_build(db, f"b-{label[:4]}-{r}")
                    t0 = time.perf_counter()
                    result, _ = await runner(db, build, n, Session(), journal).run()
                    took[label].append(time.perf_counter() - t0)
                    assert result == Result.SUCCESS
                    writes = journal.writes if journal is not None else writes
            for label, times in took.items():
                median = statistics.median(times)
                extra = f", {writes} separate journal writes" if label == "with journal" else ""
                print(f"run {label}: {n} commands in {median:.3f} s median of {ROUNDS} "
                      f"({median / n * 1000:.2f} ms/command{extra})")

            build = await new_build(db, "b-replay")
            first = Session(hang=f"cmd{n - 1}")
            task = asyncio.ensure_future(runner(db, build, n, first, db.journal).run())
            await first.hanging.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stored = await db.builds.get_build("b-replay", build.number)
            assert stored is not None
            second = Session(kept=[KeptCommand(first.ids[f"cmd{n - 1}"], 2, False)])
            t0 = time.perf_counter()
            resumed = asyncio.ensure_future(runner(db, stored, n, second, db.journal, resuming=True).run())
            await second.hanging.wait()
            replayed = time.perf_counter() - t0
            result, _ = await resumed
            assert result == Result.SUCCESS
            print(f"replay: {n - 1} journaled commands replayed and the last adopted in {replayed:.3f} s")
        finally:
            await db.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    asyncio.run(main(parser.parse_args().commands))
