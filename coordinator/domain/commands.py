"""Messages between the coordinator's domain and a worker agent, independent of the wire."""

from __future__ import annotations

from dataclasses import dataclass, field

STDOUT, STDERR, HEADER = 1, 2, 3


@dataclass(frozen=True)
class CommandSpec:
    """One process to run on a worker (the worker stays a small set of primitives)."""

    command_id: str
    argv: list[str] = field(default_factory=list)
    shell_command: str = ""
    builder_dir: str = ""
    workdir: str = "build"
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 0.0
    max_time: float = 0.0
    # (name, value) of the secrets the command was given: the worker hides each value in what
    # it sends back as "<secret NAME>".
    redactions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Interrupt:
    command_id: str
    reason: str


@dataclass(frozen=True)
class Ack:
    command_id: str
    seq: int


@dataclass(frozen=True)
class Output:
    command_id: str
    seq: int
    channel: int
    data: bytes


@dataclass(frozen=True)
class Finished:
    command_id: str
    rc: int
    reason: str = ""
    last_seq: int = 0


class WorkerLost(Exception):
    """The worker went away while a command ran; the build must end RETRY."""
