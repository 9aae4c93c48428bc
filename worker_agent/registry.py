"""The commands running on this agent, keyed by command id."""

from __future__ import annotations

import asyncio
import logging

from worker_agent.runner import CommandRunner

log = logging.getLogger("gantry.worker")


class CommandRegistry:
    """Running commands by id; each runs as one asyncio task (no thread per command).

    The registry belongs to the agent, not to a connection, so that commands can outlive one.
    For now a lost connection kills them all (the coordinator marks those builds RETRY). A later
    issue can add a grace period instead: keep them running, report `running_ids()` in
    Hello.running_command_ids, and re-attach each runner's sink (resending unacked chunks) after
    the next Welcome.
    """

    def __init__(self) -> None:
        self._runners: dict[str, CommandRunner] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, command_id: str) -> bool:
        return command_id in self._runners

    def get(self, command_id: str) -> CommandRunner | None:
        return self._runners.get(command_id)

    def running_ids(self) -> list[str]:
        return list(self._runners)

    def start(self, runner: CommandRunner, label: str) -> asyncio.Task[None]:
        """Run `runner` in the background; it leaves the registry when it ends."""
        if runner.command_id in self._runners:
            raise ValueError(f"command {runner.command_id} is already running")
        task = asyncio.create_task(self._run(runner, label), name=f"command {runner.command_id}")
        self._runners[runner.command_id] = runner
        self._tasks[runner.command_id] = task
        return task

    async def _run(self, runner: CommandRunner, label: str) -> None:
        try:
            finished = await runner.run()
            how = f"exit code {finished.rc}" + (f" ({finished.reason})" if finished.reason else "")
            log.info("finished %s: %s", label, how)
        except asyncio.CancelledError:
            log.info("killed %s: %s", label, runner.describe())
            raise
        except Exception:
            log.exception("command %s of %s failed", runner.command_id, label)
        finally:
            self._runners.pop(runner.command_id, None)
            self._tasks.pop(runner.command_id, None)

    async def kill_all(self, grace: float = 3.0) -> None:
        """Kill every running command (its process group) and wait, bounded, until reaped."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            if pending:
                log.warning("%d command(s) did not stop within %gs", len(pending), grace)
