"""What ending, collapsing or cancelling work does to build requests and buildsets.

The rules live here, the data in storage: each function runs inside one storage transaction
(`Bookkeeper.record`) on a `Ledger`, decides, and emits the events that say what happened.
- A RETRY build puts its request back in the queue; any other result completes the request.
- A buildset completes when its last request does, with the worst of their results.
- Collapsing and cancelling complete only requests nobody claimed (the claim may have won).
- At start-up, the builds a dead coordinator was running continue where they can (see
  resume.py); the others end as RETRY and are requeued.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from coordinator.domain import events
from coordinator.domain.model import Build, BuildRequest, PropertyValue
from coordinator.domain.ports import Bookkeeper, Ledger
from coordinator.domain.results import Result, worst

RESTARTED = "coordinator restarted"


def buildset_result(request_results: Iterable[Result | None]) -> Result | None:
    """The buildset's result once all its requests are complete (the worst of theirs), else None."""
    result = Result.SUCCESS
    for r in request_results:
        if r is None:
            return None
        result = worst(result, r)
    return result


async def finish_build(
    book: Bookkeeper, build: Build, result: Result, state_string: str, at: float,
    properties: list[PropertyValue] | None = None,
) -> bool:
    """End the build (storing its final `properties`, when given); whether its request went
    back to the queue."""
    return await book.record(lambda ledger: _finish_build(ledger, build, result, state_string, at, properties))


async def collapse(book: Bookkeeper, into: BuildRequest, request_ids: Sequence[int], at: float) -> list[int]:
    """Complete the still unclaimed ones of `request_ids` as SKIPPED, absorbed by `into`;
    returns the ids actually absorbed."""
    return await book.record(lambda ledger: _collapse(ledger, into, request_ids, at))


async def cancel(
    book: Bookkeeper, request_ids: Sequence[int], reason: str, at: float
) -> tuple[list[int], dict[int, BuildRequest]]:
    """Complete the unclaimed ones as CANCELLED: (ids cancelled, existing requests as they are now)."""
    return await book.record(lambda ledger: _cancel(ledger, request_ids, reason, at))


async def orphans(book: Bookkeeper, coordinator_id: str) -> list[Build]:
    """At start-up: the builds `coordinator_id` was running when it stopped."""
    return await book.record(lambda ledger: ledger.running_builds(coordinator_id))


async def release_orphans(book: Bookkeeper, coordinator_id: str, at: float, keep: Collection[int] = ()) -> int:
    """At start-up: the builds `coordinator_id` was running when it died end as RETRY and
    their requests go back to the queue, but for the builds of the requests in `keep` (they
    continue); how many requests were released."""
    return await book.record(lambda ledger: _release_orphans(ledger, coordinator_id, at, keep))


def _finish_build(
    ledger: Ledger, build: Build, result: Result, state_string: str, at: float,
    properties: list[PropertyValue] | None,
) -> bool:
    ledger.finish_build(build, result, state_string, at, properties)
    ledger.emit(events.build_finished(build, result, state_string, at))
    if result == Result.RETRY:
        ledger.unclaim_request(build.build_request_id)
        ledger.emit(events.buildrequest_retried(build, at))
        return True
    ledger.complete_request(build.build_request_id, result, at, unclaimed_only=False)
    _settle(ledger, [build.buildset_id], at)
    return False


def _collapse(ledger: Ledger, into: BuildRequest, request_ids: Sequence[int], at: float) -> list[int]:
    ids = [rid for rid in request_ids if ledger.complete_request(rid, Result.SKIPPED, at, unclaimed_only=True)]
    for rid in ids:
        ledger.record_collapse(rid, into.id, at)
    absorbed = list(ledger.requests(ids).values()) if ids else []
    for req in absorbed:
        ledger.emit(events.buildrequest_collapsed(req, into, at))
    _settle(ledger, [r.buildset_id for r in absorbed], at)
    return [r.id for r in absorbed]


def _cancel(
    ledger: Ledger, request_ids: Sequence[int], reason: str, at: float
) -> tuple[list[int], dict[int, BuildRequest]]:
    cancelled = [rid for rid in request_ids if ledger.complete_request(rid, Result.CANCELLED, at, unclaimed_only=True)]
    now = ledger.requests(request_ids)
    for rid in cancelled:
        ledger.emit(events.buildrequest_cancelled(now[rid], reason, at))
    _settle(ledger, [now[rid].buildset_id for rid in cancelled], at)
    return cancelled, now


def _release_orphans(ledger: Ledger, coordinator_id: str, at: float, keep: Collection[int]) -> int:
    state = f"retry: {RESTARTED}"
    for build in ledger.running_builds(coordinator_id):
        if build.build_request_id in keep:
            continue
        ledger.end_running_steps(build, Result.RETRY, RESTARTED, at)
        ledger.finish_build(build, Result.RETRY, state, at, None)
        ledger.emit(events.build_finished(build, Result.RETRY, state, at))
    return ledger.unclaim_all(coordinator_id, keep)


def _settle(ledger: Ledger, buildset_ids: Iterable[int], at: float) -> None:
    for bs_id in sorted(set(buildset_ids)):
        result = buildset_result(ledger.request_results(bs_id))
        if result is not None:
            ledger.complete_buildset(bs_id, result, at)
            ledger.emit(events.buildset_finished(bs_id, result, at))
