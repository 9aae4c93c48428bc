"""Retention: how long builds, their logs and their artifacts are kept, and the janitor that
deletes what is past its horizon.

`Retention(logHorizon=..., buildHorizon=..., artifactHorizon=...)` as Buildbot names the
horizons (a `timedelta` or seconds; None keeps forever), per builder (`builders=[...]`; the
first rule naming a builder wins, a rule without `builders` is everyone's default). Failing
builds (FAILURE, EXCEPTION) may be kept longer: `failedLogHorizon`, `failedBuildHorizon`,
`failedArtifactHorizon` (default: as the others). Only finished builds are touched.

`eventHorizon` (old Buildbot's `c['eventHorizon']`, as a time here) is how long the status events
are kept: one number for the whole event log, so it is given on the rule without `builders`
(default 7 days, also without any rule; None keeps them forever). The oldest events go first, as
a prefix by id; never the newest event (ids are never reused), never one a notifier has not yet
handled (its stored cursor). A status stream resuming from a deleted id is refused with a clear
error (StatusFeed), never silently given a gap.

The janitor deletes in batches of bounded size, each one short write of its own, so builds'
writes interleave with it instead of waiting behind one long transaction; then it asks the
storage to give the space back (SQLite incremental vacuum, PostgreSQL VACUUM).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from coordinator.domain.location import caller_location
from coordinator.domain.ports import Clock, Expiry, RetentionStore

log = logging.getLogger(__name__)

KINDS = ("logs", "artifacts", "builds")  # in the order they are swept (cheapest first)
BATCH = 500
# Long enough for any client to resume a stream it lost (a laptop closed over a weekend), short
# enough that the events table of a busy coordinator stays small.
DEFAULT_EVENT_HORIZON = 7 * 24 * 3600.0
EVENT_BATCH = 5000  # events are small rows: bigger batches, still a short write each


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Retention:
    def __init__(
        self,
        *,
        logHorizon: timedelta | float | None = None,  # noqa: N803 (Buildbot's names)
        buildHorizon: timedelta | float | None = None,  # noqa: N803
        artifactHorizon: timedelta | float | None = None,  # noqa: N803
        failedLogHorizon: timedelta | float | None = None,  # noqa: N803
        failedBuildHorizon: timedelta | float | None = None,  # noqa: N803
        failedArtifactHorizon: timedelta | float | None = None,  # noqa: N803
        eventHorizon: timedelta | float | None = DEFAULT_EVENT_HORIZON,  # noqa: N803
        builders: Sequence[str] = (),
    ) -> None:
        self.defined_at = caller_location()
        self.event_horizon = _seconds(eventHorizon)
        self.horizons = {
            "logs": _seconds(logHorizon),
            "builds": _seconds(buildHorizon),
            "artifacts": _seconds(artifactHorizon),
        }
        failed = {
            "logs": _seconds(failedLogHorizon),
            "builds": _seconds(failedBuildHorizon),
            "artifacts": _seconds(failedArtifactHorizon),
        }
        self.failed_horizons = {k: failed[k] if failed[k] is not None else self.horizons[k] for k in KINDS}
        self.builders = list(builders)

    def problems(self) -> list[str]:
        out = []
        for kind in KINDS:
            h, f = self.horizons[kind], self.failed_horizons[kind]
            for label, value in (("", h), ("failed ", f if f != h else None)):  # f == h: inherited
                if value is not None and value <= 0:
                    out.append(f"the {label}{kind} horizon must be positive, not {value:g}s")
            if h is not None and f is not None and f < h:
                out.append(f"failing builds' {kind} horizon ({f:g}s) is shorter than the others' ({h:g}s)")
        if isinstance(self.builders, str) or not all(isinstance(b, str) for b in self.builders):
            out.append("builders must be a list of builder names")
        if self.event_horizon is not None and self.event_horizon <= 0:
            out.append(f"the eventHorizon must be positive (or None to keep events), not {self.event_horizon:g}s")
        if self.builders and self.event_horizon != DEFAULT_EVENT_HORIZON:
            out.append("eventHorizon is one for all events: give it on the Retention without builders")
        return out


def event_horizon(rules: Sequence[Retention]) -> float | None:
    """How long events are kept: the rule without builders says, else the default."""
    default = next((r for r in rules if not r.builders), None)
    return DEFAULT_EVENT_HORIZON if default is None else default.event_horizon


def rule_for(rules: Sequence[Retention], builder: str) -> Retention | None:
    """The first rule naming `builder`, else the first rule naming no builder."""
    named = next((r for r in rules if builder in r.builders), None)
    return named or next((r for r in rules if not r.builders), None)


@dataclass
class JanitorReport:
    """What a sweep deleted (or, dry, would delete): (builder, kind) -> count."""

    dry_run: bool
    deleted: dict[tuple[str, str], int] = field(default_factory=dict)  # events: ("", "events")
    batches: int = 0
    reclaimed: str = ""

    def total(self, kind: str) -> int:
        return sum(n for (_, k), n in self.deleted.items() if k == kind)


class Janitor:
    def __init__(
        self,
        store: RetentionStore,
        clock: Clock,
        rules: Callable[[], Sequence[Retention]],
        builders: Callable[[], Iterable[str]],
        delete_files: Callable[[str, int, str], None] | None = None,
        batch: int = BATCH,
        event_batch: int = EVENT_BATCH,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = rules  # read at each sweep: a reconfig applies at the next one
        self.builders = builders
        self.delete_files = delete_files  # (builder, number, artifact name) -> remove its file
        self.batch = batch
        self.event_batch = event_batch
        self._lock = asyncio.Lock()  # one sweep at a time

    def expiries(self, now: float) -> list[Expiry]:
        out = []
        rules = self.rules()
        for builder in sorted(set(self.builders()) | set(self._named(rules))):
            rule = rule_for(rules, builder)
            if rule is None:
                continue
            for kind in KINDS:
                for failed, horizon in ((False, rule.horizons[kind]), (True, rule.failed_horizons[kind])):
                    if horizon is not None:
                        out.append(Expiry(builder, kind, now - horizon, failed))
        return out

    @staticmethod
    def _named(rules: Sequence[Retention]) -> list[str]:
        return [b for r in rules for b in r.builders]

    async def sweep(self, dry_run: bool = False) -> JanitorReport:
        """Delete everything past its horizon (dry: count it), batch by batch."""
        async with self._lock:
            report = JanitorReport(dry_run)
            for expiry in self.expiries(self.clock.now()):
                key = (expiry.builder, expiry.kind)
                if dry_run:
                    report.deleted[key] = report.deleted.get(key, 0) + await self.store.count_expired(expiry)
                    continue
                while True:
                    count, files = await self.store.expire(expiry, self.batch)
                    if not count:
                        break
                    report.batches += 1
                    report.deleted[key] = report.deleted.get(key, 0) + count
                    for number, name in files:
                        self._delete_file(expiry.builder, number, name)
                    log.info(
                        "janitor: %s: deleted %d %s of builds finished before %s%s (%d so far)",
                        expiry.builder,
                        count,
                        expiry.kind,
                        _when(expiry.before),
                        " (failing builds)" if expiry.failed else "",
                        report.deleted[key],
                    )
                    await asyncio.sleep(0)  # let the builds' writes in between batches
            await self._sweep_events(report)
            deleted = sum(report.deleted.values())
            if not dry_run and deleted:
                report.reclaimed = await self.store.reclaim_space()
                log.info("janitor: %d rows' worth deleted in %d batches; %s", deleted, report.batches, report.reclaimed)
            return report

    async def _sweep_events(self, report: JanitorReport) -> None:
        horizon = event_horizon(self.rules())
        if horizon is None:
            return
        before = self.clock.now() - horizon
        last, cursor = await self.store.event_bounds()
        # Never the newest event (its id is what a new one follows), never one a notifier still
        # has to handle (its cursor is the last one it handled).
        keep_from = last if cursor is None else min(last, cursor + 1)
        key = ("", "events")
        if report.dry_run:
            if count := await self.store.count_expired_events(before, keep_from):
                report.deleted[key] = count
            return
        while count := await self.store.expire_events(before, keep_from, self.event_batch):
            report.batches += 1
            report.deleted[key] = report.deleted.get(key, 0) + count
            log.info(
                "janitor: deleted %d events older than %s (%d so far)", count, _when(before), report.deleted[key]
            )
            await asyncio.sleep(0)

    def _delete_file(self, builder: str, number: int, name: str) -> None:
        if self.delete_files is None:
            return
        try:
            self.delete_files(builder, number, name)
        except OSError as exc:  # the row is gone; a file left behind is logged, not fatal
            log.warning("janitor: cannot delete artifact %s of %s/%d: %s", name, builder, number, exc)

    async def run(self, interval: float) -> None:
        """Sweep every `interval` seconds (after a first sweep at start-up)."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("janitor sweep failed; will try again in %gs", interval)
            await asyncio.sleep(interval)


def _when(at: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at)) + " UTC"
