"""The commands on this agent, keyed by command id, kept through lost connections.

The registry belongs to the agent, not to a connection, so that commands outlive one. When the
connection drops, each command is detached and keeps running (its output goes to its spool)
for its `missing_timeout`; the next connection reports them all in Hello.commands and the
coordinator answers Reattach (resend after what it stored) or AbandonCommand (kill). A command
that is not re-attached in time is killed: nobody waits for it any more. A command is
forgotten once the coordinator acknowledged its end (Ack.finished).
"""

from __future__ import annotations

import asyncio
import logging

from protos.gantry.v1 import worker_pb2
from worker_agent.delivery import MessageSink
from worker_agent.runner import CommandRunner

log = logging.getLogger("gantry.worker")


class CommandRegistry:
    """Commands by id; each runs as one asyncio task (no thread per command)."""

    def __init__(self) -> None:
        self._runners: dict[str, CommandRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._give_up: dict[str, asyncio.TimerHandle] = {}

    def __contains__(self, command_id: str) -> bool:
        return command_id in self._runners

    def get(self, command_id: str) -> CommandRunner | None:
        return self._runners.get(command_id)

    def running_ids(self) -> list[str]:
        return [cid for cid, r in self._runners.items() if r.delivery.finished is None]

    def states(self) -> list[worker_pb2.CommandState]:
        """What Hello reports: every command kept, running or ended but unacknowledged."""
        return [
            worker_pb2.CommandState(
                command_id=cid, last_seq=r.delivery.last_seq, finished=r.delivery.finished is not None
            )
            for cid, r in self._runners.items()
        ]

    def start(self, runner: CommandRunner, label: str) -> asyncio.Task[None]:
        """Run `runner` in the background; it leaves the registry when its end is acknowledged
        (or it is killed)."""
        if runner.command_id in self._runners:
            raise ValueError(f"command {runner.command_id} is already running")
        runner.on_end = lambda finished: _log_end(label, finished)
        task = asyncio.create_task(self._run(runner, label), name=f"command {runner.command_id}")
        self._runners[runner.command_id] = runner
        self._tasks[runner.command_id] = task
        return task

    async def _run(self, runner: CommandRunner, label: str) -> None:
        try:
            await runner.run()  # the end is sent (on_end logged it as it happened)
            await runner.delivery.finish_acknowledged()
        except asyncio.CancelledError:
            if runner.delivery.finished is None:
                log.info("killed %s: %s", label, runner.describe())
            raise
        except Exception:
            log.exception("command %s of %s failed", runner.command_id, label)
        finally:
            self._runners.pop(runner.command_id, None)
            self._tasks.pop(runner.command_id, None)
            timer = self._give_up.pop(runner.command_id, None)
            if timer is not None:
                timer.cancel()
            runner.close()

    # -- the connection's life
    def detach_all(self) -> None:
        """The connection is lost: keep each command for its missing_timeout, then kill it."""
        loop = asyncio.get_running_loop()
        for cid, runner in list(self._runners.items()):
            runner.detach()
            if runner.missing_timeout <= 0:
                self.abandon(cid, "connection lost")
            elif cid not in self._give_up:
                self._give_up[cid] = loop.call_later(
                    runner.missing_timeout,
                    self.abandon,
                    cid,
                    f"coordinator not back within {runner.missing_timeout:g}s",
                )

    def reattach(self, command_id: str, sink: MessageSink, stored_seq: int) -> int | None:
        """Resume sending `command_id` after `stored_seq`; the bytes sent again (None: unknown)."""
        runner = self._runners.get(command_id)
        if runner is None:
            return None
        timer = self._give_up.pop(command_id, None)
        if timer is not None:
            timer.cancel()
        return runner.attach(sink, stored_seq)

    def abandon(self, command_id: str, reason: str) -> None:
        """Nobody waits for the command: kill its process group (if it still runs), forget it."""
        task = self._tasks.get(command_id)
        runner = self._runners.get(command_id)
        if task is None or runner is None:
            return
        if runner.delivery.finished is None:
            log.warning("abandoning %s: %s", runner.describe(), reason)
            runner.kill_now()
        task.cancel()

    async def kill_all(self, grace: float = 3.0) -> None:
        """Kill every running command (its process group) and wait, bounded, until reaped."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                log.warning("%d command(s) did not stop within %gs", len(pending), grace)


def _log_end(label: str, finished: worker_pb2.CommandFinished) -> None:
    how = f"exit code {finished.rc}" + (f" ({finished.reason})" if finished.reason else "")
    log.info("finished %s: %s", label, how)
