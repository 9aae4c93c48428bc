"""The bot's commands, as Buildbot's IRC bot has them, and who may run them.

``status [BUILDER|all]``, ``last [BUILDER|all]``, ``watch BUILDER``, ``force [build] BUILDER
[REASON]``, ``stop [build] BUILDER N|REASON``, ``help [COMMAND]``, ``commands``, ``hello``.

Who may run a command follows Buildbot's ``authz``: a dict from command name (or a tuple of
names) to True, False or a list of nicks; ``"!"`` is the default of the dangerous commands
(``force``, ``stop``: denied unless allowed), ``""`` of the others (allowed), ``"*"`` of all.
Nicks are compared as IRC compares them (case-insensitively). Note that a nick proves nothing
on a network without NickServ enforcement: allow force/stop only on networks (or channels)
where nicks are registered.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from coordinator.domain.errors import GantryError
from coordinator.domain.model import Build
from notifiers.irc import protocol
from notifiers.irc.messages import Formatter

log = logging.getLogger(__name__)

DANGEROUS = frozenset({"FORCE", "STOP"})
RECENT = 20  # builds looked at to find the running ones and the last finished one
CONFUSED_EVERY = 60.0  # seconds between two "I don't get this" to the same nick

USAGE = {
    "status": "status [BUILDER|all] - the state of a builder (or of every builder)",
    "last": "last [BUILDER|all] - the last finished build of a builder",
    "watch": "watch BUILDER - announce the end of the builder's running builds",
    "force": "force [build] BUILDER [REASON] - start a build",
    "stop": "stop [build] BUILDER N [REASON] - stop build N (or every running build: stop build BUILDER REASON)",
    "help": "help [COMMAND] - what a command does",
    "commands": "commands - the commands I know",
    "hello": "hello - say hello",
}


class UsageError(ValueError):
    pass


class BuildCommands(Protocol):
    """What the commands need from the coordinator (its own domain services; see services.py)."""

    def builder_names(self) -> list[str]: ...
    async def recent_builds(self, builder: str, limit: int) -> list[Build]: ...  # newest first
    async def get_build(self, builder: str, number: int) -> Build: ...
    def pending_count(self, builder: str) -> int: ...
    async def force(self, builder: str, reason: str, owner: str) -> tuple[int, int]: ...
    async def stop(self, builder: str, number: int, reason: str) -> bool: ...


# watch(builder, number, reply_to) -> False when too many builds are watched already
Watch = Callable[[str, int, str], bool]


def expand_authz(authz: Mapping[Any, Any] | None, allow_force: bool | None = None) -> dict[str, Any]:
    """Buildbot's IRC.expand_authz, plus the deprecated allowForce (= authz force and stop)."""
    out: dict[str, Any] = {}
    for cmds, val in (authz or {}).items():
        for cmd in cmds if isinstance(cmds, tuple | list) else (cmds,):
            out[str(cmd).upper()] = val
    if allow_force is not None:
        out["FORCE"] = out["STOP"] = allow_force
    return out


def allowed(authz: Mapping[str, Any], command: str, nick: str) -> bool:
    acl = authz.get(command.upper())
    if acl is None:
        acl = authz.get("!", False) if command.upper() in DANGEROUS else authz.get("", True)
        acl = authz.get("*", acl)
    if isinstance(acl, list | tuple | set | frozenset):
        return protocol.lower(nick) in {protocol.lower(str(n)) for n in acl}
    if isinstance(acl, str):
        return protocol.lower(nick) == protocol.lower(acl)
    return acl is True


class Commands:
    def __init__(
        self,
        builds: BuildCommands,
        authz: Mapping[str, Any],
        formatter: Formatter,
        clock: Callable[[], float],
        watch: Watch,
    ) -> None:
        self.builds = builds
        self.authz = authz
        self.fmt = formatter
        self.clock = clock
        self.watch_build = watch
        self._confused: dict[str, float] = {}  # nick -> when we last said we did not understand

    async def handle(self, nick: str, text: str, reply_to: str) -> list[str]:
        """The replies to one command line from `nick` (already stripped of "botnick:")."""
        words = text.strip().split(None, 1)
        if not words:
            return []
        name, args = words[0].lower(), (words[1] if len(words) > 1 else "")
        method = getattr(self, f"command_{name}", None) if name in USAGE else None
        if method is None:
            # Once a minute per nick at most: two bots answering each other must not loop.
            now, who = self.clock(), protocol.lower(nick)
            if now - self._confused.get(who, -CONFUSED_EVERY) < CONFUSED_EVERY:
                return []
            if len(self._confused) > 1000:
                self._confused.clear()
            self._confused[who] = now
            return [f"I don't get this '{name}'... Try 'help' or 'commands'."]
        if not allowed(self.authz, name, nick):
            log.warning("IRC: %s may not run %r", nick, name)
            return [f"Sorry {nick}, you are not allowed to {name}."]
        try:
            result: list[str] = await method(_split(args), nick=nick, reply_to=reply_to)
            return result
        except UsageError as exc:
            return [str(exc) or f"Usage: {USAGE[name]}"]
        except GantryError as exc:  # a builder or build that does not exist, a refused force
            return [f"Sorry: {exc}"]

    # ---------------------------------------------------------------- commands

    async def command_hello(self, args: list[str], **_: str) -> list[str]:
        return ["yes?"]

    async def command_commands(self, args: list[str], **_: str) -> list[str]:
        return ["Buildbot-style commands: " + ", ".join(sorted(USAGE))]

    async def command_help(self, args: list[str], **_: str) -> list[str]:
        if not args:
            return [f"Get help on what? (try 'help COMMAND'; commands: {', '.join(sorted(USAGE))})"]
        if args[0].lower() not in USAGE:
            raise UsageError(f"There is no such command '{args[0]}'.")
        return [f"Usage: {USAGE[args[0].lower()]}"]

    async def command_status(self, args: list[str], **_: str) -> list[str]:
        return [f"`{b}`: {await self._status_of(b)}" for b in self._which(args, "status")]

    async def command_last(self, args: list[str], **_: str) -> list[str]:
        out = []
        for b in self._which(args, "last"):
            builds = await self.builds.recent_builds(b, RECENT)
            done = next((x for x in builds if x.complete), None)
            out.append(f"`{b}`: {self.fmt.last(done, self.clock())}")
        return out

    async def command_watch(self, args: list[str], reply_to: str = "", **_: str) -> list[str]:
        if len(args) != 1:
            raise UsageError(f"Usage: {USAGE['watch']}")
        running = [b for b in await self.builds.recent_builds(args[0], RECENT) if not b.complete]
        if not running:
            return ["There are no currently running builds."]
        out = []
        for build in sorted(running, key=lambda x: x.number):
            if not self.watch_build(build.builder, build.number, reply_to):
                out.append("Sorry, I am watching too many builds already.")
                break
            out.append(f"Watching {self.fmt.subject(build)} until it finishes...")
        return out

    async def command_force(self, args: list[str], nick: str = "", **_: str) -> list[str]:
        if args and args[0] == "build" and len(args) > 1:
            args = args[1:]
        if not args:
            raise UsageError(f"Usage: {USAGE['force']}")
        builder, reason = args[0], " ".join(args[1:])
        bs_id, req_id = await self.builds.force(
            builder, reason=f"forced: by IRC user {nick}: {reason or 'no reason given'}", owner=nick
        )
        return [f"Force build successfully requested (buildset {bs_id}, request {req_id})."]

    async def command_stop(self, args: list[str], nick: str = "", **_: str) -> list[str]:
        if args and args[0] == "build" and len(args) > 2:
            args = args[1:]
        if len(args) < 2:
            raise UsageError(f"Usage: {USAGE['stop']}")
        builder = args[0]
        reason = f"stopped: by IRC user {nick}"
        if args[1].isdigit():
            numbers = [int(args[1])]
            if args[2:]:
                reason += ": " + " ".join(args[2:])
        else:  # Buildbot's form: `stop build BUILDER REASON` stops every running build
            reason += ": " + " ".join(args[1:])
            numbers = [b.number for b in await self.builds.recent_builds(builder, RECENT) if not b.complete]
            if not numbers:
                return ["Sorry, no build is currently running."]
        out = []
        for number in sorted(numbers):
            build = await self.builds.get_build(builder, number)
            if await self.builds.stop(builder, number, reason):
                out.append(f"{self.fmt.subject(build)} interrupted.")
            else:
                out.append(f"Sorry, {self.fmt.subject(build)} is not running.")
        return out

    # ---------------------------------------------------------------- helpers

    def _which(self, args: list[str], command: str) -> list[str]:
        if len(args) > 1:
            raise UsageError(f"Usage: {USAGE[command]}")
        if not args or args[0] == "all":
            return sorted(self.builds.builder_names())
        return [args[0]]

    async def _status_of(self, builder: str) -> str:
        builds = await self.builds.recent_builds(builder, RECENT)
        running = sorted((b for b in builds if not b.complete), key=lambda b: b.number)
        pending = self.builds.pending_count(builder)
        if running:
            text = "running " + ", ".join(f"#{b.number} ({b.state_string})" for b in running)
        else:
            text = "idle"
            done = next((b for b in builds if b.complete), None)
            if done is not None:
                text += f", {self.fmt.last(done, self.clock())}"
        return text + (f", {pending} pending" if pending else "")


def _split(args: str) -> list[str]:
    try:
        return shlex.split(args)
    except ValueError:  # an unbalanced quote: take the words as they are
        return args.split()
