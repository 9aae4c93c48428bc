"""The running step's command journal: durable-execution replay of a step after a coordinator
restart (as Temporal replays a workflow's history).

Every action of a step that reaches outside the coordinator — a command on the worker, a
command on the coordinator host, a file primitive or transfer, a trigger — gets the step's next
index. When it ends, what the step consumed of it is journaled (JournalEntry: exit code, where
its output lies in the step's log, a file primitive's result, a triggered buildset), together
with a fingerprint of what was asked. A build resumed after a restart runs the step's run()
again from its beginning in replay: an action whose index is journaled returns its recorded
result without running (its log chunks are stored already), the first one that is not is the
one that was in flight (a worker command is adopted from the worker), and the ones after run
normally. A replay that asks something else than the journal holds (a step that is not
deterministic, or a changed configuration) cannot continue: the build ends RETRY.

Writes: an entry is stored lazily, just before the step's next action starts (one write, and
the worker may then forget the command), never per output message — riding the commit of the
next command's new log when it has one (a ShellSequence's commands each have their own). The
step's last action needs none: the step's end commit makes it moot. A trigger's entry is stored in the transaction that
stores its buildset, so that a resumed Trigger never triggers twice; recorded test cases'
entry likewise rides their insert, so that a resumed step never records them twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from coordinator.domain.model import Build, JournalEntry, Step
from coordinator.domain.ports import JournalStore

COMMAND, MASTER, FILE, TRIGGER, TESTS = "command", "master", "file", "trigger", "tests"


class CannotContinue(Exception):
    """A step resumed after a restart cannot go on from where it was: the build ends RETRY with
    this reason."""


def fingerprint(kind: str, *what: Any) -> str:
    """A short digest of what an action asks (secrets in it are hashed, never stored)."""
    text = json.dumps([kind, *what], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class StepJournal:
    """The journal of the build's running step. One per build, owned by BuildRunner, which
    brackets each step with begin_step()/end_step(); the step's commands, files and triggers
    ask `next()` before each action and hand `done()` what it did."""

    def __init__(self, build: Build, store: JournalStore | None) -> None:
        self.build = build
        self.store = store  # None: nothing is journaled (a build cannot be resumed)
        self._step: Step | None = None
        self._replay: list[JournalEntry] = []
        self._index = 0
        self._pending: list[JournalEntry] = []
        # Told when entries were stored: the worker may forget the commands they record.
        self.on_stored: Callable[[], None] = lambda: None

    @property
    def durable(self) -> bool:
        return self.store is not None

    def begin_step(self, step: Step, replay: Sequence[JournalEntry] = ()) -> None:
        self._step = step
        self._replay = sorted(replay, key=lambda e: e.index)
        if [e.index for e in self._replay] != list(range(len(self._replay))):
            raise CannotContinue(f"the journal of step {step.name} has gaps")
        self._index = 0
        self._pending = []

    def end_step(self) -> None:
        """The step's end is being committed: what it did is stored with it."""
        self._step = None
        self._replay = []
        self._pending = []

    @property
    def replaying(self) -> bool:
        """Whether the next action is one journaled before the restart."""
        return self._index < len(self._replay)

    @property
    def first_live(self) -> bool:
        """Whether the action let run last is the first one after the replayed ones (in a
        resumed step: the one that may have been in flight at the restart)."""
        return self._index == len(self._replay) + 1

    def journaled_ids(self) -> set[str]:
        return {e.command_id for e in self._replay if e.command_id}

    async def next(self, kind: str, fp: str) -> JournalEntry | None:
        """Before an action of the running step: its journaled entry when it is replayed
        (CannotContinue if it asks something else), else None once the entries of the actions
        before it are stored."""
        index = self._index
        self._index += 1
        if index < len(self._replay):
            entry = self._replay[index]
            if entry.kind != kind or entry.fingerprint != fp:
                step = self._step.name if self._step is not None else "?"
                raise CannotContinue(
                    f"step {step} asked for something else than before the restart at its action "
                    f"{index + 1} ({kind}, journaled: {entry.kind}); its run is not deterministic "
                    "or the configuration changed"
                )
            return entry
        await self.flush()
        return None

    def entry(self, kind: str, fp: str, **fields: Any) -> JournalEntry:
        """The entry of the action `next()` just let run (the latest index)."""
        step = self._step
        assert step is not None, "journal entries only while a step runs"
        return JournalEntry(self.build.id, step.number, self._index - 1, kind, fp, **fields)

    def done(self, entry: JournalEntry) -> None:
        """The action ended: its entry is stored before the step's next action starts."""
        if self.store is not None and self._step is not None:
            self._pending.append(entry)

    def take_pending(self) -> list[JournalEntry]:
        """The entries to store now, with another write of the step (which then calls
        on_stored)."""
        if self.store is None:
            return []
        pending, self._pending = self._pending, []
        return pending

    async def flush(self) -> None:
        if self._pending and self.store is not None:
            pending, self._pending = self._pending, []
            await self.store.record_journal(pending)
            self.on_stored()
