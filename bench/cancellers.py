"""`python -m bench.cancellers [--branches N] [--pushes N]`: what the build cancellers cost per
event (they see every committed event, synchronously, on the coordinator's loop).

Replays the events of N pushes spread over `--branches` branches (each push: buildset.added,
buildrequest.added for 3 builders, and for every other push the buildset.finished of an older
one) through `Cancellers.on_event` with an OldBuildCanceller and a FailingBuildsetCanceller
configured, the cancelling itself stubbed out; prints events/s and the superseded requests."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from coordinator.domain import events
from coordinator.domain.model import BuildRequest, NewBuildset, SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.scheduling.cancellers import Cancellers, FailingBuildsetCanceller, OldBuildCanceller

BUILDERS = ["test", "lint", "docs"]


class Count:
    """The WorkCanceller, and what the cancellers spawn: counted, not run."""

    def __init__(self) -> None:
        self.cancelled = 0

    async def cancel_work(self, request_id: int, reason: str) -> None:
        return None

    def spawn(self, aw: Coroutine[Any, Any, None]) -> None:
        self.cancelled += 1
        aw.close()


def replay(branches: int, pushes: int) -> tuple[int, float, int]:
    work = Count()
    c = Cancellers(work)
    c.configure([OldBuildCanceller("old", builders=BUILDERS), FailingBuildsetCanceller("ff", builders=["lint"])])
    c.background.spawn = work.spawn  # type: ignore[method-assign,assignment]
    evs = []
    rid = 0
    for n in range(1, pushes + 1):
        bs = NewBuildset("push", "s", BUILDERS, [SourceStamp("repo", f"b{n % branches}", f"{n:040x}")],
                         change_ids=[n])
        evs.append(events.buildset_added(n, bs, float(n)))
        for b in BUILDERS:
            rid += 1
            evs.append(events.buildrequest_added(BuildRequest(rid, n, b, 0, float(n)), float(n)))
        if n % 2 == 0 and n > branches:
            evs.append(events.buildset_finished(n - branches, Result.SUCCESS, float(n)))
    started = time.perf_counter()
    for e in evs:
        c.on_event(e)
    elapsed = time.perf_counter() - started
    return len(evs), elapsed, work.cancelled


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cancellers")
    p.add_argument("--branches", type=int, default=1000)
    p.add_argument("--pushes", type=int, default=100_000)
    args = p.parse_args()

    async def run() -> tuple[int, float, int]:
        return replay(args.branches, args.pushes)

    count, elapsed, cancelled = asyncio.run(run())
    print(f"{count} events over {args.branches} branches in {elapsed:.3f}s: "
          f"{count / elapsed:,.0f} events/s, {1e6 * elapsed / count:.2f} µs/event; {cancelled} requests superseded")


if __name__ == "__main__":
    main()
