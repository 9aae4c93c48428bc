"""Cancelling superseded work: Buildbot's OldBuildCanceller and FailingBuildsetCanceller.

Both are configuration objects (``MasterConfig(cancellers=[...])``) whose rules the
:class:`Cancellers` service applies as committed events arrive (it is an EventBus listener):
- OldBuildCanceller: a build request for a configured builder, from a buildset made of changes
  (a push, a new pull-request revision), cancels the same builder's unfinished requests on the
  same branch (project, codebase, repository, branch) whose revision differs: pending ones are
  cancelled, running builds stopped, with a reason naming the newer buildset and request.
  As in Buildbot, forced builds and rebuilds (no changes) never cancel anything.
- FailingBuildsetCanceller: when a build of a configured builder FAILS, the unfinished requests
  of its buildset (of the `cancel` builders, or all) are cancelled or their builds stopped.

The rules decide from the events alone (in commit order, synchronously), so a newer change
arriving while an older build is claimed, starting, running or finishing gives one answer; the
cancelling itself goes through the ordinary paths (`WorkCanceller`: cancel an unclaimed
request; else stop its build, now or as soon as it starts). Cancelled work ends CANCELLED.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from coordinator.domain.events import Event
from coordinator.domain.location import caller_location
from coordinator.domain.ports import RequestQueue
from coordinator.domain.results import Result
from coordinator.domain.scheduling.background import Background

log = logging.getLogger(__name__)

BranchKey = Callable[[str], str]
BranchFilter = Sequence[str] | re.Pattern[str] | Callable[[str], bool] | None


def default_branch_key(branch: str) -> str:
    """Buildbot's: every iteration of a Gerrit change (refs/changes/NN/CHANGE/PATCHSET) is one
    branch, so a new patch set supersedes the previous ones."""
    m = re.match(r"(refs/changes/\d+/\d+)/\d+$", branch)
    return m.group(1) if m else branch


class CancellerRule:
    """What both cancellers share: a name, the builders they watch, a branch filter."""

    def __init__(self, name: str, builders: Sequence[str], branches: BranchFilter) -> None:
        self.name = name
        self.builders: Any = [builders] if isinstance(builders, str) else list(builders) if isinstance(
            builders, list | tuple) else builders  # anything else is reported by `errors`
        self.branches = branches
        self.defined_at = caller_location(3)

    @property
    def errors(self) -> list[str]:
        out = []
        if not isinstance(self.name, str) or not self.name:
            out.append("needs a name (a non-empty string)")
        if not isinstance(self.builders, list) or not self.builders or not all(
            isinstance(b, str) and b for b in self.builders
        ):
            out.append(f"builders must be a non-empty list of builder names, not {self.builders!r}")
        b = self.branches
        if not (b is None or callable(b) or isinstance(b, re.Pattern) or (
            isinstance(b, list | tuple) and all(isinstance(x, str) for x in b)
        )):
            out.append(f"branches must be None, a list of branch names, a re.compile(...) pattern "
                       f"or a function branch -> bool, not {b!r}")
        return out

    def watches(self, builder: str, branch: str) -> bool:
        if builder not in self.builders:
            return False
        b = self.branches
        if b is None:
            return True
        if isinstance(b, re.Pattern):
            return b.fullmatch(branch) is not None
        if callable(b):
            try:
                return bool(b(branch))
            except Exception:
                log.exception("branches filter of canceller %s raised on %r", self.name, branch)
                return False
        return branch in b


class OldBuildCanceller(CancellerRule):
    """``OldBuildCanceller("superseded", builders=["test"], branches=None)``: a new change on a
    branch cancels the builds of older revisions of that branch (see the module)."""

    def __init__(
        self, name: str, builders: Sequence[str], branches: BranchFilter = None,
        branch_key: BranchKey | None = None,
    ) -> None:
        super().__init__(name, builders, branches)
        self.branch_key = branch_key or default_branch_key

    @property
    def errors(self) -> list[str]:
        out = super().errors
        if not callable(self.branch_key):
            out.append(f"branch_key must be a function branch -> key, not {self.branch_key!r}")
        return out


class FailingBuildsetCanceller(CancellerRule):
    """``FailingBuildsetCanceller("fail-fast", builders=["lint"], cancel=None)``: when a build
    of `builders` fails, the rest of its buildset stops (only the `cancel` builders' when given)."""

    def __init__(
        self, name: str, builders: Sequence[str], cancel: Sequence[str] | None = None, branches: BranchFilter = None,
    ) -> None:
        super().__init__(name, builders, branches)
        self.cancel: Any = [cancel] if isinstance(cancel, str) else list(cancel) if isinstance(
            cancel, list | tuple) else cancel  # anything else is reported by `errors`

    @property
    def errors(self) -> list[str]:
        out = super().errors
        if self.cancel is not None and not (
            isinstance(self.cancel, list) and all(isinstance(b, str) and b for b in self.cancel)
        ):
            out.append(f"cancel must be None (every builder) or a list of builder names, not {self.cancel!r}")
        return out

    def cancels(self, builder: str) -> bool:
        return self.cancel is None or builder in self.cancel


Canceller = OldBuildCanceller | FailingBuildsetCanceller


class WorkCanceller(Protocol):
    """How a rule stops work (BuildControl): cancel the request if nobody claimed it, else stop
    its build (now, or as soon as it starts); nothing if it is complete."""

    async def cancel_work(self, request_id: int, reason: str) -> None: ...


@dataclass
class _Open:
    """An unfinished buildset as the events described it."""

    stamps: list[dict[str, Any]]
    from_changes: bool
    requests: dict[int, str] = field(default_factory=dict)  # request id -> builder
    keys: set[tuple[str, str, str, str, str, str]] = field(default_factory=set)  # where it is tracked


@dataclass(frozen=True)
class _Tracked:
    request_id: int
    buildset_id: int
    revision: str


class Cancellers:
    """Applies the configured cancellers to the committed events (an EventBus listener)."""

    def __init__(self, work: WorkCanceller) -> None:
        self.work = work
        self.rules: list[Canceller] = []
        self.background = Background(log)
        self._open: dict[int, _Open] = {}  # buildsets naming a watched builder
        # (canceller, builder, project, codebase, repository, branch key) -> unfinished requests
        self._by_branch: dict[tuple[str, str, str, str, str, str], list[_Tracked]] = {}

    def configure(self, rules: Sequence[Canceller]) -> None:
        self.rules = list(rules)

    def _watched(self, builder: str) -> bool:
        return any(builder in r.builders for r in self.rules)

    async def seed(self, requests: RequestQueue) -> None:
        """At start-up: track the unfinished requests stored before (as Buildbot's cancellers do
        on reconfig), so a new push also supersedes what was queued before a restart. Call it
        before anything is dispatched (every unfinished request is unclaimed then)."""
        if not self.rules:
            return
        pending = [r for r in await requests.unclaimed_requests() if self._watched(r.builder)]
        buildsets = await requests.get_buildsets(sorted({r.buildset_id for r in pending}))
        for r in sorted(pending, key=lambda r: r.id):
            stored = buildsets.get(r.buildset_id)
            if stored is None:
                continue
            bs = self._open.get(r.buildset_id)
            if bs is None:
                stamps = [{"codebase": s.codebase, "repository": s.repository, "branch": s.branch,
                           "revision": s.revision, "project": s.project, "patched": bool(s.patch)}
                          for s in stored.sourcestamps]
                bs = self._open[r.buildset_id] = _Open(stamps, False)  # older work supersedes nothing
            bs.requests[r.id] = r.builder
            self._superseding(bs, r.buildset_id, r.id, r.builder)

    def on_event(self, e: Event) -> None:
        if not self.rules:
            return
        if e.kind == "buildset.added":
            if any(self._watched(b) for b in e.details.get("builders", ())):
                stamps = list(e.details.get("sourcestamps", ()))
                self._open[e.buildset_id] = _Open(stamps, bool(e.details.get("change_ids")))
        elif e.kind == "buildrequest.added":
            bs = self._open.get(e.buildset_id)
            if bs is not None:
                rid = int(e.details["request_id"])
                bs.requests[rid] = e.builder
                self._superseding(bs, e.buildset_id, rid, e.builder)
        elif e.kind in ("buildrequest.cancelled", "buildrequest.collapsed"):
            bs = self._open.get(e.buildset_id)
            if bs is not None:
                bs.requests.pop(int(e.details["request_id"]), None)
        elif e.kind == "build.finished" and e.result == Result.FAILURE:
            self._failing(e)
        elif e.kind == "buildset.finished":
            self._forget(e.buildset_id)

    # ------------------------------------------------------------------ OldBuildCanceller

    def _superseding(self, bs: _Open, bs_id: int, rid: int, builder: str) -> None:
        for rule in self.rules:
            if not isinstance(rule, OldBuildCanceller):
                continue
            for ss in bs.stamps:
                branch = str(ss.get("branch", ""))
                # A try job is not a revision of its branch: never superseded, never superseding.
                if not branch or ss.get("patched") or not rule.watches(builder, branch):
                    continue
                key = (rule.name, builder, str(ss.get("project", "")), str(ss.get("codebase", "")),
                       str(ss.get("repository", "")), _key(rule, branch))
                revision = str(ss.get("revision", ""))
                tracked = self._by_branch.setdefault(key, [])
                if bs.from_changes:
                    older = [t for t in tracked if t.request_id != rid and t.revision != revision]
                    tracked[:] = [t for t in tracked if t not in older]
                    shown = f" (revision {revision[:12]})" if revision else ""
                    reason = (f"superseded by a newer change on branch {branch!r}{shown}: "
                              f"buildset {bs_id}, build request {rid}; cancelled by {rule.name}")
                    for t in older:
                        self._cancel(t.request_id, reason)
                tracked.append(_Tracked(rid, bs_id, revision))
                bs.keys.add(key)

    def _forget(self, bs_id: int) -> None:
        bs = self._open.pop(bs_id, None)
        if bs is None:
            return
        for key in bs.keys:
            kept = [t for t in self._by_branch.get(key, ()) if t.buildset_id != bs_id]
            if kept:
                self._by_branch[key] = kept
            else:
                self._by_branch.pop(key, None)

    # ------------------------------------------------------------------ FailingBuildsetCanceller

    def _failing(self, e: Event) -> None:
        bs = self._open.get(e.buildset_id)
        if bs is None:
            return
        branches = [str(ss.get("branch", "")) for ss in bs.stamps] or [""]
        for rule in self.rules:
            if not isinstance(rule, FailingBuildsetCanceller):
                continue
            if not any(rule.watches(e.builder, b) for b in branches):
                continue
            reason = (f"build {e.builder} #{e.build_number} of buildset {e.buildset_id} failed; "
                      f"cancelled by {rule.name}")
            for rid, builder in list(bs.requests.items()):
                if builder != e.builder and rule.cancels(builder):
                    del bs.requests[rid]
                    self._cancel(rid, reason)

    def _cancel(self, request_id: int, reason: str) -> None:
        log.info("cancelling build request %d: %s", request_id, reason)
        self.background.spawn(self.work.cancel_work(request_id, reason))

    async def aclose(self) -> None:
        await self.background.wait()


def _key(rule: OldBuildCanceller, branch: str) -> str:
    try:
        return str(rule.branch_key(branch))
    except Exception:
        log.exception("branch_key of canceller %s raised on %r; using the branch", rule.name, branch)
        return branch
